using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Server.Rpc;
using Grpc.Core;
using Google.Protobuf.WellKnownTypes;
using Lease = CredBroker.Core.Leases.Lease;

namespace CredBroker.Server.Services;

/// <summary>
/// credbroker.v1.Operator on the operator listener: leases and agents here, each action attributed
/// to the operator; keys, audit, approvals and policy in their own classes.
/// </summary>
public sealed class OperatorService(
    LeaseAdministration administration, RevocationNotifier notifier, KeyOperations keys, AuditOperations audit, PolicyOperations policy, PartialListings partial) : Operator.OperatorBase
{
    public const string ServiceName = "credbroker.v1.Operator";

    public override Task<RotateSigningKeyResponse> RotateSigningKey(RotateSigningKeyRequest request, ServerCallContext context) => keys.RotateAsync(request, context);

    public override Task QueryAudit(QueryAuditRequest request, IServerStreamWriter<Contracts.V1.AuditRecord> responseStream, ServerCallContext context) =>
        audit.QueryAuditAsync(request, responseStream, context);

    public override Task<VerifyAuditResponse> VerifyAudit(VerifyAuditRequest request, ServerCallContext context) => audit.VerifyAuditAsync(request, context);

    public override Task<ListApprovalsResponse> ListApprovals(ListApprovalsRequest request, ServerCallContext context) => policy.ListApprovalsAsync(request, context);

    public override Task<DecideApprovalResponse> DecideApproval(DecideApprovalRequest request, ServerCallContext context) => policy.DecideApprovalAsync(request, context);

    public override Task<ReloadPolicyResponse> ReloadPolicy(ReloadPolicyRequest request, ServerCallContext context) => policy.ReloadPolicyAsync(request, context);

    public override Task<AnalyzePolicyResponse> AnalyzePolicy(AnalyzePolicyRequest request, ServerCallContext context) => policy.AnalyzePolicyAsync(request, context);

    public override Task<ExplainDecisionResponse> ExplainDecision(ExplainDecisionRequest request, ServerCallContext context) => policy.ExplainDecisionAsync(request, context);

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
            Context = { lease.Context.Select(c => new GrantedContextLabel { Key = c.Key, Value = c.Value, Source = c.Source }) },
        };
        if (lease.EndedAt is { } ended)
        {
            wire.EndedAt = Timestamp.FromDateTimeOffset(ended);
        }

        return wire;
    }

    public override async Task<ListLeasesResponse> ListLeases(ListLeasesRequest request, ServerCallContext context)
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
                throw RpcErrors.Create(StatusCode.InvalidArgument, $"state '{Clip(request.State)}' is not one of pending_approval, active, completed, expired, revoked.");
            }
        }

        var query = new LeaseQuery(
            request.AgentId.Length > 0 ? request.AgentId : null,
            request.Owner.Length > 0 ? request.Owner : null,
            state,
            request.PageSize == 0 ? 100 : request.PageSize,
            request.PageToken.Length > 0 ? request.PageToken : null);
        var page = await administration.ListAsync(query, context.CancellationToken);
        var response = new ListLeasesResponse { NextPageToken = page.NextPageToken ?? string.Empty, UnreachableShards = { partial.Observe("ListLeases", page, wholeListing: query.AgentId is null && query.PageToken is null) } };
        response.Leases.AddRange(page.Leases.Select(ToWire));
        return response;
    }

    public override async Task<Contracts.V1.Lease> GetLease(GetLeaseRequest request, ServerCallContext context) =>
        ToWire(await administration.GetAsync(request.LeaseId, context.CancellationToken));

    public override async Task<RevokeLeaseResponse> RevokeLease(RevokeLeaseRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var expected = request.ExpectedGeneration == 0 ? (long?)null : request.ExpectedGeneration;
        var (lease, changed) = await administration.RevokeLeaseAsync(request.LeaseId, request.Reason, actor, expected, context.CancellationToken);
        notifier.Poke();
        return new RevokeLeaseResponse { Lease = ToWire(lease), Changed = changed };
    }

    public override async Task<RevokeLeaseResponse> RevokeTask(RevokeTaskRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var (lease, changed) = await administration.RevokeTaskAsync(request.AgentId, request.TaskId, request.Reason, actor, context.CancellationToken);
        notifier.Poke();
        return new RevokeLeaseResponse { Lease = ToWire(lease), Changed = changed };
    }

    public override async Task<QuarantineAgentResponse> QuarantineAgent(QuarantineAgentRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var (since, revoked) = await administration.QuarantineAsync(request.AgentId, request.Reason, actor, context.CancellationToken);
        notifier.Poke();
        return new QuarantineAgentResponse { QuarantinedSince = Timestamp.FromDateTimeOffset(since), LeasesRevoked = revoked };
    }

    public override async Task<ReleaseAgentResponse> ReleaseAgent(ReleaseAgentRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        return new ReleaseAgentResponse { Released = await administration.ReleaseAsync(request.AgentId, actor, context.CancellationToken) };
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
