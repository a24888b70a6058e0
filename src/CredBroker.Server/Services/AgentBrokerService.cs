using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Server.Auth;
using CredBroker.Server.Rpc;
using Grpc.Core;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Server.Services;

/// <summary>
/// credbroker.v1.AgentBroker: maps the wire messages to <see cref="TaskBroker"/> and back.
/// BeginTask, IssueToken and RenewLease accept a DPoP proof in the metadata key <c>dpop</c> (<see cref="DpopProofCheck"/>).
/// </summary>
public sealed class AgentBrokerService(TaskBroker broker, ApprovalDesk approvals, RevocationNotifier notifier, DpopProofCheck dpop) : AgentBroker.AgentBrokerBase
{
    public const string ServiceName = "credbroker.v1.AgentBroker";

    public override async Task<BeginTaskResponse> BeginTask(BeginTaskRequest request, ServerCallContext context)
    {
        var caller = await dpop.BindAsync(CallGuard.Agent(context), context);
        var ttl = ToTimeSpan(request.Ttl, "ttl");
        var start = await broker.BeginTaskAsync(caller, new BeginTaskCommand(
            request.TaskId, request.Purpose, request.Scopes, request.Audience, ttl, request.SubjectToken, request.Context), context.CancellationToken);
        var response = new BeginTaskResponse
        {
            LeaseId = start.Lease.LeaseId,
            LeaseDeadline = Timestamp.FromDateTimeOffset(start.Lease.Deadline),
            RuleIds = { start.Decision.RuleIds },
            DroppedScopes = { start.Decision.DroppedScopes },
        };
        if (start.Token is { } token)
        {
            response.AccessToken = token.AccessToken;
            response.TokenId = token.TokenId;
            response.TokenExpiresAt = Timestamp.FromDateTimeOffset(token.ExpiresAt);
            response.GrantedScopes.Add(token.Scopes);
        }
        else
        {
            response.ApprovalId = start.Lease.LeaseId;
            response.GrantedScopes.Add(start.Lease.Scopes);
            response.ApprovalScopes.Add(start.Lease.Approval?.ApprovalScopes ?? []);
            response.ApprovalReason = start.Lease.Approval?.Reason ?? string.Empty;
        }

        return response;
    }

    public override async Task WatchApproval(WatchApprovalRequest request, IServerStreamWriter<ApprovalStatus> stream, ServerCallContext context)
    {
        var caller = CallGuard.Agent(context);
        await foreach (var view in approvals.WatchAsync(caller, request.ApprovalId, context.CancellationToken))
        {
            await stream.WriteAsync(ToStatus(view), context.CancellationToken);
        }
    }

    public static ApprovalStatus ToStatus(ApprovalView view)
    {
        var lease = view.Lease;
        var approval = lease.Approval!;
        var status = new ApprovalStatus
        {
            ApprovalId = lease.LeaseId,
            LeaseId = lease.LeaseId,
            State = view.State.ToString().ToLowerInvariant(),
            RequestedScopes = { approval.RequestedScopes },
            ApprovalScopes = { approval.ApprovalScopes },
            Reason = view.State == ApprovalState.Pending ? approval.Reason : approval.Note ?? string.Empty,
            Deadline = Timestamp.FromDateTimeOffset(lease.Deadline),
            DecidedBy = approval.DecidedBy ?? string.Empty,
        };
        if (view.State == ApprovalState.Approved)
        {
            status.GrantedScopes.Add(lease.Scopes);
        }

        if (view.Token is { } token)
        {
            status.AccessToken = token.AccessToken;
            status.TokenId = token.TokenId;
            status.TokenExpiresAt = Timestamp.FromDateTimeOffset(token.ExpiresAt);
        }

        return status;
    }

    public override async Task<IssueTokenResponse> IssueToken(IssueTokenRequest request, ServerCallContext context)
    {
        var caller = await dpop.BindAsync(CallGuard.Agent(context), context);
        var grant = await broker.IssueTokenAsync(caller, request.LeaseId, request.Scopes, request.Audience, context.CancellationToken);
        return new IssueTokenResponse
        {
            AccessToken = grant.Token.AccessToken,
            TokenId = grant.Token.TokenId,
            TokenExpiresAt = Timestamp.FromDateTimeOffset(grant.Token.ExpiresAt),
            GrantedScopes = { grant.Token.Scopes },
        };
    }

    public override async Task<RenewLeaseResponse> RenewLease(RenewLeaseRequest request, ServerCallContext context)
    {
        var caller = await dpop.BindAsync(CallGuard.Agent(context), context);
        var extendBy = ToTimeSpan(request.ExtendBy, "extend_by");
        var grant = await broker.RenewLeaseAsync(caller, request.LeaseId, extendBy, context.CancellationToken);
        return new RenewLeaseResponse
        {
            LeaseDeadline = Timestamp.FromDateTimeOffset(grant.Lease.Deadline),
            AccessToken = grant.Token.AccessToken,
            TokenId = grant.Token.TokenId,
            TokenExpiresAt = Timestamp.FromDateTimeOffset(grant.Token.ExpiresAt),
            GrantedScopes = { grant.Token.Scopes },
        };
    }

    public override async Task<CompleteTaskResponse> CompleteTask(CompleteTaskRequest request, ServerCallContext context)
    {
        var caller = CallGuard.Agent(context);
        var lease = await broker.CompleteTaskAsync(caller, request.LeaseId, context.CancellationToken);
        notifier.Poke();
        return new CompleteTaskResponse { State = lease.State.ToWire() };
    }

    private static TimeSpan? ToTimeSpan(Duration? duration, string field)
    {
        if (duration is null)
        {
            return null;
        }

        // Protobuf Duration: |seconds| ≤ 315,576,000,000 and nanos in (-1e9, 1e9) with the same sign.
        if (duration.Seconds is < -315_576_000_000 or > 315_576_000_000 || duration.Nanos is <= -1_000_000_000 or >= 1_000_000_000
            || (duration.Seconds > 0 && duration.Nanos < 0) || (duration.Seconds < 0 && duration.Nanos > 0))
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"{field} is not a valid google.protobuf.Duration.");
        }

        return duration.ToTimeSpan();
    }
}
