using CredBroker.Contracts.V1;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Server.Rpc;
using Grpc.Core;
using CredBroker.Server.Audit;
using Google.Protobuf.WellKnownTypes;
using AuditEvent = CredBroker.Core.Audit.AuditEvent;
using AuditRecord = CredBroker.Core.Audit.AuditRecord;

namespace CredBroker.Server.Services;

/// <summary>QueryAudit and VerifyAudit of credbroker.v1.Operator (issue 8), on the operator listener.</summary>
public sealed class AuditOperations(IAuditLog log, Func<IReadOnlyCollection<IAuditSigner>> signers, AuditFollow follow, TimeSpan pollInterval)
{
    public const int MaxLimit = 10_000;
    public const int DefaultLimit = 1000;
    public const int MaxFilterLength = 256;
    private const int PageSize = 500;

    public static Contracts.V1.AuditRecord ToWire(AuditRecord record, AuditEvent e)
    {
        var wire = new Contracts.V1.AuditEvent
        {
            Type = e.Type.ToWire(),
            Time = Timestamp.FromDateTimeOffset(e.Time),
            AgentId = e.AgentId,
            Owner = e.Owner,
            TaskId = e.TaskId,
            LeaseId = e.LeaseId,
            Audience = e.Audience,
            ScopesRequested = { e.ScopesRequested },
            ScopesGranted = { e.ScopesGranted },
            RuleIds = { e.RuleIds },
            Caller = e.Caller,
            Operator = e.Operator,
            Reason = e.Reason,
        };
        foreach (var (key, value) in e.Details)
        {
            wire.Details[key] = value;
        }
        return new Contracts.V1.AuditRecord
        {
            Sequence = record.Sequence, Event = wire, Hash = record.Hash, PreviousHash = record.PreviousHash, CanonicalJson = record.Body,
        };
    }

    public async Task QueryAuditAsync(QueryAuditRequest request, IServerStreamWriter<Contracts.V1.AuditRecord> stream, ServerCallContext context)
    {
        var (query, limit) = Parse(request);
        var cancellationToken = context.CancellationToken;
        if (request.Tail > 0)
        {
            var state = await Read(() => log.GetStateAsync(cancellationToken));
            query = query with { AfterSequence = Math.Max(query.AfterSequence, state.HeadSequence - request.Tail) };
        }

        var sent = 0;
        string? position = null;
        while (limit == 0 || sent < limit)
        {
            var appended = follow.NextAppend;
            var page = await Read(() => log.ReadAsync(position, PageSize, cancellationToken));
            foreach (var record in page)
            {
                position = record.Position;
                if (record.TryEvent() is { } e && query.Matches(record, e))
                {
                    await stream.WriteAsync(ToWire(record, e), cancellationToken);
                    if (++sent == limit)
                    {
                        return;
                    }
                }
            }

            if (page.Count < PageSize)
            {
                if (!request.Follow)
                {
                    return;
                }

                // Woken by this replica's next append, or polls for other replicas' appends.
                await Task.WhenAny(appended, Task.Delay(pollInterval, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    public async Task<VerifyAuditResponse> VerifyAuditAsync(VerifyAuditRequest request, ServerCallContext context)
    {
        var result = await Read(() => AuditVerifier.VerifyAsync(log, signers(), null, context.CancellationToken));
        return new VerifyAuditResponse
        {
            Intact = result.Intact,
            RecordsChecked = result.RecordsChecked,
            FirstSequence = result.FirstSequence,
            LastSequence = result.LastSequence,
            CheckpointsVerified = result.CheckpointsVerified,
            FirstBrokenSequence = result.FirstBrokenSequence ?? 0,
            Problem = result.Problem,
        };
    }

    private static (AuditQuery Query, int Limit) Parse(QueryAuditRequest request)
    {
        if (request.EventTypes.Count > AuditQuery.MaxTypes)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"event_types lists {request.EventTypes.Count} event types; at most {AuditQuery.MaxTypes}.");
        }

        var types = new HashSet<AuditEventType>();
        foreach (var name in request.EventTypes)
        {
            if (!AuditEventTypes.TryParse(name, out var type))
            {
                throw RpcErrors.Create(StatusCode.InvalidArgument,
                    $"event_types: '{Clip(name)}' is not an audit event type; use one of {string.Join(", ", AuditEventTypes.All)}.");
            }

            types.Add(type);
        }

        if (request.Limit is < 0 or > MaxLimit)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"limit must be between 0 and {MaxLimit} (0 = {DefaultLimit}, or no limit with follow).");
        }

        if (request.AfterSequence < 0 || request.Tail is < 0 or > MaxLimit)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"after_sequence must not be negative, and tail must be between 0 and {MaxLimit}.");
        }

        var since = request.Since?.ToDateTimeOffset();
        var until = request.Until?.ToDateTimeOffset();
        if (since is not null && until is not null && since >= until)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "since must be before until.");
        }

        var query = new AuditQuery
        {
            AgentId = Filter(request.AgentId, "agent_id"),
            Owner = Filter(request.Owner, "owner"),
            TaskId = Filter(request.TaskId, "task_id"),
            LeaseId = Filter(request.LeaseId, "lease_id"),
            Types = types,
            Since = since,
            Until = until,
            AfterSequence = request.AfterSequence,
        };
        return (query, request.Limit == 0 && !request.Follow ? DefaultLimit : request.Limit);
    }

    private static string? Filter(string value, string field)
    {
        if (value.Length > MaxFilterLength || value.Any(char.IsControl))
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"{field} must be at most {MaxFilterLength} characters without control characters.");
        }

        return value.Length == 0 ? null : value;
    }

    private static async Task<T> Read<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (AuditUnavailableException e)
        {
            throw RpcErrors.From(new BrokerException(BrokerErrorKind.Unavailable, $"The audit log is unavailable ({e.Message}). Retry with backoff.", null, e));
        }
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
