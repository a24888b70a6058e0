using CredBroker.Core.Leases;

namespace CredBroker.Core.Policy.Rules;

/// <summary>
/// <c>toxic.&lt;id&gt;</c>: scopes that must never be held together. A combination is reached when
/// each of its patterns is matched by a requested scope or (for <c>within: agent</c>) by a scope
/// of the agent's other active leases, and at least one by the request itself (what the agent
/// held before is not this request's doing).
/// </summary>
public sealed class ToxicCombinationRule : IPolicyRule
{
    public string Id => "toxic.*";

    public void Evaluate(PolicyEvaluation e)
    {
        var combinations = e.Policy.ToxicCombinations;
        if (!AnyMember(e.Policy, e.Scopes))
        {
            // A combination is only reached with a requested scope in it (see the summary).
            for (var c = 0; c < combinations.Count && e.Explaining; c++)
            {
                e.Pass(combinations[c].RuleId);
            }

            return;
        }

        for (var c = 0; c < combinations.Count; c++)
        {
            var combination = combinations[c];
            if (Reached(combination, e.Scopes, e.Request.Holdings, out var heldElsewhere))
            {
                var what = string.Join(" + ", combination.Scopes.Select(s => s.Text));
                var why = combination.Description.Length > 0 ? $" ({combination.Description})" : string.Empty;
                e.Deny(combination.RuleId, heldElsewhere is null
                    ? $"The requested scopes combine into a forbidden combination: {what}{why}; split the work so no one task holds them together."
                    : $"The requested scopes together with what this agent already holds in task '{heldElsewhere}' form a forbidden combination: {what}{why}; complete that task first.");
                return;
            }

            e.Pass(combination.RuleId);
        }
    }

    /// <summary>The first combination <paramref name="scopes"/> would reach with <paramref name="holdings"/>, or null.</summary>
    public static ToxicCombination? FirstReached(PolicyDocument policy, IReadOnlyList<string> scopes, IReadOnlyList<HeldLease> holdings)
    {
        var list = scopes as List<string> ?? [.. scopes];
        return policy.ToxicCombinations.FirstOrDefault(c => Reached(c, list, holdings, out _));
    }

    /// <summary>
    /// The <c>within: agent</c> combinations a lease with <paramref name="scopes"/> would complete with
    /// the agent's other leases, as guards for the store to check atomically with the lease write (the
    /// members <paramref name="scopes"/> do not match themselves). Empty — no store read — when the
    /// scopes touch no agent-wide combination.
    /// </summary>
    public static IReadOnlyList<ToxicGuard> AgentWideGuards(PolicyDocument policy, IReadOnlyList<string> scopes)
    {
        if (!policy.NeedsHoldings(scopes))
        {
            return [];
        }

        var list = scopes as List<string> ?? [.. scopes];
        var guards = new List<ToxicGuard>();
        foreach (var combination in policy.ToxicCombinations.Where(c => c.Within == ToxicScope.Agent))
        {
            var missing = combination.Scopes.Where(p => !Any(list, p)).ToList();
            if (missing.Count > 0 && missing.Count < combination.Scopes.Count)
            {
                guards.Add(new ToxicGuard(combination.RuleId, missing));
            }
        }

        return guards;
    }

    private static bool Reached(ToxicCombination combination, List<string> scopes, IReadOnlyList<HeldLease> holdings, out string? heldElsewhere)
    {
        heldElsewhere = null;
        var fromRequest = false;
        var patterns = combination.Scopes;
        for (var p = 0; p < patterns.Count; p++)
        {
            var pattern = patterns[p];
            if (Any(scopes, pattern))
            {
                fromRequest = true;
                continue;
            }

            var holder = combination.Within == ToxicScope.Agent ? HolderOf(holdings, pattern) : null;
            if (holder is null)
            {
                return false;
            }

            heldElsewhere ??= holder.TaskId;
        }

        return fromRequest;
    }

    private static bool AnyMember(PolicyDocument policy, List<string> scopes)
    {
        for (var i = 0; i < scopes.Count; i++)
        {
            if (policy.ToxicMembers.Matches(scopes[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Any(List<string> scopes, ScopePattern pattern)
    {
        for (var i = 0; i < scopes.Count; i++)
        {
            if (pattern.Matches(scopes[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static HeldLease? HolderOf(IReadOnlyList<HeldLease> holdings, ScopePattern pattern)
    {
        for (var l = 0; l < holdings.Count; l++)
        {
            var scopes = holdings[l].Scopes;
            for (var i = 0; i < scopes.Count; i++)
            {
                if (pattern.Matches(scopes[i]))
                {
                    return holdings[l];
                }
            }
        }

        return null;
    }
}
