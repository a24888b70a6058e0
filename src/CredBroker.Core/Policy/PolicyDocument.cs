using CredBroker.Core.Agents;

namespace CredBroker.Core.Policy;

/// <summary>
/// A validated policy file: the agents and the global rules. Immutable; a reload swaps in a new one.
/// </summary>
public sealed record PolicyDocument
{
    public required AgentCatalog Agents { get; init; }

    /// <summary>The context vocabulary: label key → the values requests may use. Anything else is unclassifiable (deny).</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> ContextLabels { get; init; } = new Dictionary<string, IReadOnlySet<string>>();

    /// <summary>
    /// <c>verified_context</c>: context label key → the workload credential claim its value must come from.
    /// Labels not listed here are asserted by the agent.
    /// </summary>
    public IReadOnlyDictionary<string, string> VerifiedContext { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<ToxicCombination> ToxicCombinations
    {
        get;
        init
        {
            field = value;
            ToxicMembers = new ScopePatternSet(value.SelectMany(c => c.Scopes));
            AgentWideToxicMembers = new ScopePatternSet(value.Where(c => c.Within == ToxicScope.Agent).SelectMany(c => c.Scopes));
        }
    } = [];

    /// <summary>The patterns of <c>within: agent</c> combinations: only a request matching one of them needs the agent's other leases.</summary>
    public ScopePatternSet AgentWideToxicMembers { get; private init; } = ScopePatternSet.Empty;

    /// <summary>Whether deciding a request for <paramref name="scopes"/> needs the agent's other active leases (a store read).</summary>
    public bool NeedsHoldings(IEnumerable<string> scopes) => AgentWideToxicMembers.Count > 0 && scopes.Any(AgentWideToxicMembers.Matches);

    /// <summary>Every pattern of every toxic combination: a request matching none of them reaches none.</summary>
    public ScopePatternSet ToxicMembers { get; private init; } = ScopePatternSet.Empty;

    public IReadOnlyList<ContextRule> ContextRules { get; init; } = [];

    public PolicySettings Settings { get; init; } = new();

    /// <summary>Where it was read from (file path or a name).</summary>
    public string Source { get; init; } = "policy";

    /// <summary>A short digest of the file's text, to tell versions apart.</summary>
    public string Version { get; init; } = string.Empty;
}

/// <summary>Broker-wide policy settings.</summary>
public sealed record PolicySettings
{
    /// <summary>How long a pending approval waits for an operator before it expires (denied).</summary>
    public TimeSpan ApprovalTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Denial-burst detection; null = off.</summary>
    public DenialBurstSettings? DenialBurst { get; init; }
}

public enum DenialBurstAction
{
    Alert,
    Quarantine,
}

/// <summary><see cref="Threshold"/> denials for one agent within <see cref="Window"/> → <see cref="Action"/>.</summary>
public sealed record DenialBurstSettings(int Threshold, TimeSpan Window, DenialBurstAction Action);

/// <summary>Where a toxic combination is checked.</summary>
public enum ToxicScope
{
    /// <summary>Within one task (one lease).</summary>
    Task,

    /// <summary>Within one task and across the agent's concurrently active leases.</summary>
    Agent,
}

/// <summary>Scopes that are benign alone but must never be held together. Each member is a pattern.</summary>
public sealed record ToxicCombination(string Id, IReadOnlyList<ScopePattern> Scopes, ToxicScope Within, string Description)
{
    public string RuleId { get; } = "toxic." + Id;
}

public enum ContextAction
{
    Deny,
    RequireApproval,
    DropScopes,
    CapTtl,
}

/// <summary>
/// When a request's context matches every label in <see cref="When"/> (and, if set, the agent is
/// one of <see cref="Agents"/>), the requested scopes matching <see cref="Scopes"/> (empty = all)
/// are denied, sent for approval, dropped, or get their lease and token ttl capped at <see cref="Ttl"/>.
/// </summary>
public sealed record ContextRule(
    string Id, IReadOnlyDictionary<string, IReadOnlySet<string>> When, ScopePatternSet Scopes, IReadOnlySet<string> Agents,
    ContextAction Action, TimeSpan? Ttl, string Description)
{
    private readonly KeyValuePair<string, IReadOnlySet<string>>[] _when = [.. When];

    public string RuleId { get; } = "context." + Id;

    public bool AppliesTo(string agentId, IReadOnlyDictionary<string, string> context)
    {
        if (context.Count == 0 || (Agents.Count > 0 && !Agents.Contains(agentId)))
        {
            return false;
        }

        foreach (var (key, values) in _when)
        {
            if (!context.TryGetValue(key, out var value) || !values.Contains(value))
            {
                return false;
            }
        }

        return true;
    }

    public bool Covers(string scope) => Scopes.Count == 0 || Scopes.Matches(scope);
}
