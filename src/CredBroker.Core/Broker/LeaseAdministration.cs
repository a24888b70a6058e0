using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Delegation;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Broker;

/// <summary>
/// What operators do to leases and agents: look, revoke, quarantine, release. Every change is
/// attributed to <c>actor</c> in the revocation log. Revocations are idempotent: revoking what
/// already ended reports its final state instead of failing, so a retried or duplicated operator
/// command never produces an error storm. Each change is in the audit chain before it is
/// acknowledged; when the audit is down the operator gets UNAVAILABLE and retries. With an agent
/// catalog, agent actions on an id that is neither defined nor known to the store are NOT_FOUND.
/// </summary>
public sealed partial class LeaseAdministration(ILeaseStore store, TimeProvider time, IAuditEvents audit, IAgentCatalog? agents = null)
{
    public const int MaxReasonLength = 512;

    private readonly DelegationCascade _cascade = new(store, time);

    public async Task<LeasePage> ListAsync(LeaseQuery query, CancellationToken cancellationToken)
    {
        if (query.AgentId is { } agent)
        {
            RequestValidator.AgentId(agent);
        }

        try
        {
            query.Validate();
        }
        catch (ArgumentException e)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, e.Message);
        }

        return await StoreCall.Run(() => store.ListLeasesAsync(query, time.GetUtcNow(), cancellationToken));
    }

    public async Task<Lease> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(leaseId);
        var lease = await StoreCall.Run(() => store.GetAsync(leaseId, cancellationToken));
        return lease is null ? throw NotFound(leaseId) : LeaseQuery.AsOf(lease, time.GetUtcNow());
    }

    /// <summary>Revokes an open lease; <c>Changed</c> is false when it had already ended.</summary>
    public async Task<(Lease Lease, bool Changed)> RevokeLeaseAsync(string leaseId, string reason, string actor, long? expectedGeneration, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(leaseId);
        Reason(reason);
        var result = await StoreCall.Run(() => store.RevokeAsync(leaseId, reason, actor, time.GetUtcNow(), expectedGeneration, cancellationToken));
        if (result.Outcome is TransitionOutcome.Applied or TransitionOutcome.NotApplicable)
        {
            // Also on a repeated revoke: it finishes a cascade an earlier call did not complete.
            await _cascade.EndDescendantsAsync(result.Lease!, result.Children, cancellationToken);
            await audit.RaiseAsync(Revoked(result.Lease!, reason, actor, result.Outcome == TransitionOutcome.Applied), cancellationToken);
        }

        return result.Outcome switch
        {
            TransitionOutcome.Applied => (result.Lease!, true),
            TransitionOutcome.NotApplicable => (LeaseQuery.AsOf(result.Lease!, time.GetUtcNow()), false),
            TransitionOutcome.Conflict => throw new BrokerException(BrokerErrorKind.FailedPrecondition,
                $"Lease {leaseId} is at generation {result.Lease?.Generation}, not {expectedGeneration}: it changed since you read it; read it again and retry."),
            _ => throw NotFound(leaseId),
        };
    }

    public async Task<(Lease Lease, bool Changed)> RevokeTaskAsync(string agentId, string taskId, string reason, string actor, CancellationToken cancellationToken)
    {
        RequestValidator.AgentId(agentId);
        RequestValidator.TaskId(taskId);
        Reason(reason);
        var lease = await StoreCall.Run(() => store.FindByTaskAsync(agentId, taskId, cancellationToken))
            ?? throw new BrokerException(BrokerErrorKind.NotFound, $"Agent '{agentId}' has no lease for task '{taskId}'.");
        return await RevokeLeaseAsync(lease.LeaseId, reason, actor, expectedGeneration: null, cancellationToken);
    }

    /// <summary>Quarantines the agent (idempotent); returns since when and how many leases this call revoked.</summary>
    public async Task<(DateTimeOffset Since, int Revoked)> QuarantineAsync(string agentId, string reason, string actor, CancellationToken cancellationToken)
    {
        RequestValidator.AgentId(agentId);
        Reason(reason);
        await RequireKnownAgentAsync(agentId, cancellationToken);
        var open = await StoreCall.Run(() => store.ListOpenLeasesAsync(agentId, time.GetUtcNow(), PolicyGate.MaxHoldings, cancellationToken));
        var revoked = await StoreCall.Run(() => store.QuarantineAgentAsync(agentId, reason, actor, time.GetUtcNow(), cancellationToken));
        await EndDelegatedFromAsync(agentId, cancellationToken);
        var since = await StoreCall.Run(() => store.GetAgentStatusAsync(agentId, cancellationToken));
        // One lease.revoked per lease this quarantine ended (as a RevokeLease would record), then the quarantine itself.
        foreach (var lease in open)
        {
            if (await StoreCall.Run(() => store.GetAsync(lease.LeaseId, cancellationToken)) is { State: LeaseState.Revoked } ended)
            {
                await audit.RaiseAsync(Revoked(ended, reason, actor, changed: true) with
                {
                    Details = new Dictionary<string, string> { ["changed"] = "true", ["state"] = ended.State.ToWire(), ["operation"] = "quarantine_agent" },
                }, cancellationToken);
            }
        }

        await audit.RaiseAsync(AgentEvent(AuditEventType.AgentQuarantined, agentId, actor, reason, revoked), cancellationToken);
        return (since ?? time.GetUtcNow(), revoked);
    }

    public async Task<bool> ReleaseAsync(string agentId, string actor, CancellationToken cancellationToken)
    {
        RequestValidator.AgentId(agentId);
        await RequireKnownAgentAsync(agentId, cancellationToken);
        var released = await StoreCall.Run(() => store.ReleaseAgentAsync(agentId, actor, time.GetUtcNow(), cancellationToken));
        await audit.RaiseAsync(AgentEvent(AuditEventType.AgentReleased, agentId, actor, "", released ? 1 : 0), cancellationToken);
        return released;
    }

    /// <summary>Revokes what was delegated from the agent's revoked leases (also on a repeated quarantine, to finish an interrupted cascade).</summary>
    private async Task EndDelegatedFromAsync(string agentId, CancellationToken cancellationToken)
    {
        string? pageToken = null;
        do
        {
            var query = new LeaseQuery(agentId, State: LeaseState.Revoked, PageSize: LeaseQuery.MaxPageSize, PageToken: pageToken);
            var page = await StoreCall.Run(() => store.ListLeasesAsync(query, time.GetUtcNow(), cancellationToken));
            foreach (var lease in page.Leases)
            {
                await _cascade.EndDescendantsAsync(lease, null, cancellationToken);
            }

            pageToken = page.NextPageToken;
        }
        while (pageToken is not null);
    }

    /// <summary>
    /// An agent is known when the policy defines it, or when the store still has something of it (a
    /// quarantine, open leases: an agent removed from the policy can still be quarantined and released).
    /// </summary>
    private async Task RequireKnownAgentAsync(string agentId, CancellationToken cancellationToken)
    {
        if (agents is null || agents.Find(agentId) is not null
            || await StoreCall.Run(() => store.GetAgentStatusAsync(agentId, cancellationToken)) is not null
            || (await StoreCall.Run(() => store.ListOpenLeasesAsync(agentId, time.GetUtcNow(), 1, cancellationToken))).Count > 0)
        {
            return;
        }

        throw new BrokerException(BrokerErrorKind.NotFound,
            $"Agent '{agentId}' is not defined in the policy and has no leases or quarantine in the store; check the agent id.");
    }

    private static void Reason(string reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, "reason is required: say why (it is recorded with the revocation).");
        }

        if (reason.Length > MaxReasonLength || reason.Any(char.IsControl))
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, $"reason must be at most {MaxReasonLength} characters without control characters.");
        }
    }

    private static BrokerException NotFound(string leaseId) => new(BrokerErrorKind.NotFound, $"Lease '{leaseId}' not found.");
}
