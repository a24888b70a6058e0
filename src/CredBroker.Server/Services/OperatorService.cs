using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Grpc;
using Google.Protobuf.WellKnownTypes;
using Lease = CredBroker.Core.Leases.Lease;

namespace CredBroker.Server.Services;

/// <summary>credbroker.v1.Operator on the operator listener: leases and agents, each action attributed to the operator.</summary>
public sealed class OperatorService(LeaseAdministration administration, RevocationNotifier notifier)
{
    public const string ServiceName = "credbroker.v1.Operator";

    public void Register(GrpcMethodRegistry registry) => registry
        .AddUnary<ListLeasesRequest, ListLeasesResponse>(ServiceName, "ListLeases", ListLeasesRequest.Parser, ListLeasesAsync)
        .AddUnary<GetLeaseRequest, Contracts.V1.Lease>(ServiceName, "GetLease", GetLeaseRequest.Parser, GetLeaseAsync)
        .AddUnary<RevokeLeaseRequest, RevokeLeaseResponse>(ServiceName, "RevokeLease", RevokeLeaseRequest.Parser, RevokeLeaseAsync)
        .AddUnary<RevokeTaskRequest, RevokeLeaseResponse>(ServiceName, "RevokeTask", RevokeTaskRequest.Parser, RevokeTaskAsync)
        .AddUnary<QuarantineAgentRequest, QuarantineAgentResponse>(ServiceName, "QuarantineAgent", QuarantineAgentRequest.Parser, QuarantineAgentAsync)
        .AddUnary<ReleaseAgentRequest, ReleaseAgentResponse>(ServiceName, "ReleaseAgent", ReleaseAgentRequest.Parser, ReleaseAgentAsync);

    public static Contracts.V1.Lease ToWire(Lease lease)
    {
        var wire = new Contracts.V1.Lease
        {
            LeaseId = lease.LeaseId,
            AgentId = lease.AgentId,
            TaskId = lease.TaskId,
            Owner = lease.Owner,
            Purpose = lease.Purpose,
            Audience = lease.Audience,
            Scopes = { lease.Scopes },
            State = lease.State.ToWire(),
            CreatedAt = Timestamp.FromDateTimeOffset(lease.CreatedAt),
            Deadline = Timestamp.FromDateTimeOffset(lease.Deadline),
            MaxDeadline = Timestamp.FromDateTimeOffset(lease.MaxDeadline),
            Generation = lease.Generation,
        };
        if (lease.EndedAt is { } ended)
        {
            wire.EndedAt = Timestamp.FromDateTimeOffset(ended);
        }

        return wire;
    }

    private async Task<ListLeasesResponse> ListLeasesAsync(ListLeasesRequest request, GrpcCallContext context)
    {
        LeaseState? state = null;
        if (request.State.Length > 0)
        {
            try
            {
                state = LeaseStateNames.FromWire(request.State);
            }
            catch (FormatException)
            {
                throw new RpcException(StatusCode.InvalidArgument, $"state '{Clip(request.State)}' is not one of pending_approval, active, completed, expired, revoked.");
            }
        }

        var query = new LeaseQuery(
            request.AgentId.Length > 0 ? request.AgentId : null,
            request.Owner.Length > 0 ? request.Owner : null,
            state,
            request.PageSize == 0 ? 100 : request.PageSize,
            request.PageToken.Length > 0 ? request.PageToken : null);
        var page = await CallGuard.RunAsync(() => administration.ListAsync(query, context.CancellationToken));
        var response = new ListLeasesResponse { NextPageToken = page.NextPageToken ?? string.Empty };
        response.Leases.AddRange(page.Leases.Select(ToWire));
        return response;
    }

    private async Task<Contracts.V1.Lease> GetLeaseAsync(GetLeaseRequest request, GrpcCallContext context) =>
        ToWire(await CallGuard.RunAsync(() => administration.GetAsync(request.LeaseId, context.CancellationToken)));

    private async Task<RevokeLeaseResponse> RevokeLeaseAsync(RevokeLeaseRequest request, GrpcCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var expected = request.ExpectedGeneration == 0 ? (long?)null : request.ExpectedGeneration;
        var (lease, changed) = await CallGuard.RunAsync(() => administration.RevokeLeaseAsync(request.LeaseId, request.Reason, actor, expected, context.CancellationToken));
        notifier.Poke();
        return new RevokeLeaseResponse { Lease = ToWire(lease), Changed = changed };
    }

    private async Task<RevokeLeaseResponse> RevokeTaskAsync(RevokeTaskRequest request, GrpcCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var (lease, changed) = await CallGuard.RunAsync(() => administration.RevokeTaskAsync(request.AgentId, request.TaskId, request.Reason, actor, context.CancellationToken));
        notifier.Poke();
        return new RevokeLeaseResponse { Lease = ToWire(lease), Changed = changed };
    }

    private async Task<QuarantineAgentResponse> QuarantineAgentAsync(QuarantineAgentRequest request, GrpcCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var (since, revoked) = await CallGuard.RunAsync(() => administration.QuarantineAsync(request.AgentId, request.Reason, actor, context.CancellationToken));
        notifier.Poke();
        return new QuarantineAgentResponse { QuarantinedSince = Timestamp.FromDateTimeOffset(since), LeasesRevoked = revoked };
    }

    private async Task<ReleaseAgentResponse> ReleaseAgentAsync(ReleaseAgentRequest request, GrpcCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        return new ReleaseAgentResponse { Released = await CallGuard.RunAsync(() => administration.ReleaseAsync(request.AgentId, actor, context.CancellationToken)) };
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
