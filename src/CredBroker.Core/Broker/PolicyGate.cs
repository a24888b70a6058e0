using CredBroker.Core.Agents;
using CredBroker.Core.Leases;
using CredBroker.Core.Policy;

namespace CredBroker.Core.Broker;

/// <summary>
/// Request-time policy for the broker: gathers what the agent already holds (its other active
/// leases, for toxic combinations across tasks), asks the policy, and watches denials for
/// bursts (alert, or quarantine the agent). The holdings read here is advisory (it explains the
/// denial early); the binding check is the store's: BeginTask passes the agent-wide toxic
/// combinations the lease would complete as <see cref="LeaseQuota.ToxicGuards"/>, checked in the same
/// atomic step as the lease write, so two concurrent BeginTasks cannot both pass.
/// </summary>
/// <remarks>
/// A burst with action <c>quarantine</c> quarantines through <paramref name="administration"/>, the
/// same path as an operator's QuarantineAgent: audited (<c>agent.quarantined</c>, <c>lease.revoked</c>)
/// and cascading to delegated child leases.
/// </remarks>
public sealed class PolicyGate(IIssuancePolicy policy, ILeaseStore store, TimeProvider time, LeaseAdministration administration)
{
    /// <summary>The actor recorded for quarantines the denial-burst detector makes.</summary>
    public const string BurstActor = "policy:denial_burst";

    /// <summary>Leases read per decision at most (an agent's concurrency quota normally bounds it far lower).</summary>
    public const int MaxHoldings = 1000;

    private readonly DenialBurstDetector _bursts = new(time);

    /// <summary>Raised when an agent's denials reach the burst threshold (after any quarantine took effect).</summary>
    public event Action<DenialBurst>? DenialBurst;

    public PolicyDocument Policy => policy.Current;

    public async Task<Decision> DecideAsync(AgentDefinition agent, TaskRequest request, CancellationToken cancellationToken)
    {
        // Only an agent-wide toxic combination looks at other leases: skip the store read otherwise.
        var holdings = policy.Current.NeedsHoldings(request.Scopes) ? await HoldingsAsync(agent.Id, request.TaskId, cancellationToken) : [];
        var decision = policy.Decide(agent, request with { Holdings = holdings });
        if (decision.Outcome == DecisionOutcome.Deny && _bursts.Record(agent.Id, decision, policy.Current.Settings.DenialBurst) is { } burst)
        {
            if (burst.Action == DenialBurstAction.Quarantine)
            {
                var reason = $"denial burst: {burst.Denials} policy denials within {burst.Window} (last: {string.Join(",", decision.RuleIds)})";
                await administration.QuarantineAsync(agent.Id, reason.Length <= LeaseAdministration.MaxReasonLength ? reason : reason[..LeaseAdministration.MaxReasonLength], BurstActor, cancellationToken);
            }

            DenialBurst?.Invoke(burst);
        }

        return decision;
    }

    /// <summary>The agent's active leases other than <paramref name="exceptTaskId"/>'s.</summary>
    public async Task<IReadOnlyList<HeldLease>> HoldingsAsync(string agentId, string? exceptTaskId, CancellationToken cancellationToken)
    {
        var open = await StoreCall.Run(() => store.ListOpenLeasesAsync(agentId, time.GetUtcNow(), MaxHoldings, cancellationToken));
        return open.Where(l => l.State == LeaseState.Active && l.TaskId != exceptTaskId)
            .Select(l => new HeldLease(l.LeaseId, l.TaskId, l.Scopes))
            .ToList();
    }
}
