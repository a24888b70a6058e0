using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Grpc;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Server.Services;

/// <summary>credbroker.v1.AgentBroker: maps the wire messages to <see cref="TaskBroker"/> and back.</summary>
public sealed class AgentBrokerService(TaskBroker broker, ApprovalDesk approvals, RevocationNotifier notifier)
{
    public const string ServiceName = "credbroker.v1.AgentBroker";

    public void Register(GrpcMethodRegistry registry) => registry
        .AddUnary<BeginTaskRequest, BeginTaskResponse>(ServiceName, "BeginTask", BeginTaskRequest.Parser, BeginTaskAsync)
        .AddUnary<IssueTokenRequest, IssueTokenResponse>(ServiceName, "IssueToken", IssueTokenRequest.Parser, IssueTokenAsync)
        .AddUnary<RenewLeaseRequest, RenewLeaseResponse>(ServiceName, "RenewLease", RenewLeaseRequest.Parser, RenewLeaseAsync)
        .AddUnary<CompleteTaskRequest, CompleteTaskResponse>(ServiceName, "CompleteTask", CompleteTaskRequest.Parser, CompleteTaskAsync)
        .AddServerStreaming<WatchApprovalRequest, ApprovalStatus>(ServiceName, "WatchApproval", WatchApprovalRequest.Parser, WatchApprovalAsync);

    private async Task<BeginTaskResponse> BeginTaskAsync(BeginTaskRequest request, GrpcCallContext context)
    {
        var caller = CallGuard.Agent(context);
        var ttl = ToTimeSpan(request.Ttl, "ttl");
        var start = await CallGuard.RunAsync(() => broker.BeginTaskAsync(caller, new BeginTaskCommand(
            request.TaskId, request.Purpose, request.Scopes, request.Audience, ttl, request.SubjectToken, request.Context), context.CancellationToken));
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

    private async Task WatchApprovalAsync(WatchApprovalRequest request, IServerStreamWriter<ApprovalStatus> stream, GrpcCallContext context)
    {
        var caller = CallGuard.Agent(context);
        try
        {
            await foreach (var view in approvals.WatchAsync(caller, request.ApprovalId, context.CancellationToken))
            {
                await stream.WriteAsync(ToStatus(view), context.CancellationToken);
            }
        }
        catch (BrokerException e)
        {
            throw CallGuard.ToRpc(e);
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

    private async Task<IssueTokenResponse> IssueTokenAsync(IssueTokenRequest request, GrpcCallContext context)
    {
        var caller = CallGuard.Agent(context);
        var grant = await CallGuard.RunAsync(() => broker.IssueTokenAsync(caller, request.LeaseId, request.Scopes, request.Audience, context.CancellationToken));
        return new IssueTokenResponse
        {
            AccessToken = grant.Token.AccessToken,
            TokenId = grant.Token.TokenId,
            TokenExpiresAt = Timestamp.FromDateTimeOffset(grant.Token.ExpiresAt),
            GrantedScopes = { grant.Token.Scopes },
        };
    }

    private async Task<RenewLeaseResponse> RenewLeaseAsync(RenewLeaseRequest request, GrpcCallContext context)
    {
        var caller = CallGuard.Agent(context);
        var extendBy = ToTimeSpan(request.ExtendBy, "extend_by");
        var grant = await CallGuard.RunAsync(() => broker.RenewLeaseAsync(caller, request.LeaseId, extendBy, context.CancellationToken));
        return new RenewLeaseResponse
        {
            LeaseDeadline = Timestamp.FromDateTimeOffset(grant.Lease.Deadline),
            AccessToken = grant.Token.AccessToken,
            TokenId = grant.Token.TokenId,
            TokenExpiresAt = Timestamp.FromDateTimeOffset(grant.Token.ExpiresAt),
            GrantedScopes = { grant.Token.Scopes },
        };
    }

    private async Task<CompleteTaskResponse> CompleteTaskAsync(CompleteTaskRequest request, GrpcCallContext context)
    {
        var caller = CallGuard.Agent(context);
        var lease = await CallGuard.RunAsync(() => broker.CompleteTaskAsync(caller, request.LeaseId, context.CancellationToken));
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
            throw new RpcException(StatusCode.InvalidArgument, $"{field} is not a valid google.protobuf.Duration.");
        }

        return duration.ToTimeSpan();
    }
}
