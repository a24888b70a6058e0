using CredBroker.Core.Policy;

namespace CredBroker.Core.Leases;

/// <summary>
/// A <c>within: agent</c> toxic combination a new lease would complete with the agent's other
/// leases: <see cref="ILeaseStore.OpenAsync"/> refuses the open (<see cref="OpenRefusal.ToxicCombination"/>,
/// <see cref="RuleId"/>) when, at the moment of the write, the agent's other active leases together
/// hold a scope matching every pattern of <see cref="Held"/> (the members the new lease's scopes do
/// not match themselves). Checked in the same atomic step as the write, so two concurrent opens
/// cannot both pass.
/// </summary>
public sealed record ToxicGuard(string RuleId, IReadOnlyList<ScopePattern> Held)
{
    public void Validate()
    {
        if (string.IsNullOrEmpty(RuleId) || RuleId.Contains(' ', StringComparison.Ordinal) || Held.Count == 0)
        {
            throw new ArgumentException("A toxic guard names its rule (no spaces) and at least one scope pattern.");
        }
    }

    /// <summary>True when <paramref name="heldScopes"/> (the scopes of the agent's other active leases) match every pattern of <see cref="Held"/>.</summary>
    public bool ReachedBy(IReadOnlyCollection<string> heldScopes) => Held.All(p => heldScopes.Any(p.Matches));
}
