using CredBroker.Core.Policy;

namespace CredBroker.Core.Agents;

/// <summary>
/// An agent the owner approved: who owns it, what it is for, which workloads act as it, which
/// scopes (tools) it may hold, which it may never hold, which need a human first, under which
/// request context, and how long its tokens and leases live. Scope sets hold patterns
/// (<see cref="ScopePattern"/>); tokens only ever carry concrete scopes.
/// </summary>
public sealed record AgentDefinition
{
    private ScopePatternSet? _allowed;
    private ScopePatternSet? _disallowed;
    private ScopePatternSet? _approval;
    private ScopePatternSet? _senderConstrained;

    public required string Id { get; init; }

    public required string Owner { get; init; }

    public required string Purpose { get; init; }

    /// <summary>Workload identities (credential subjects, SPIFFE ids) that act as this agent.</summary>
    public IReadOnlyList<string> Identities { get; init; } = [];

    /// <summary>Audiences (downstream APIs) tokens may be minted for; the first is the default.</summary>
    public required IReadOnlyList<string> Audiences { get; init; }

    /// <summary>Allowed scope patterns.</summary>
    public required IReadOnlySet<string> AllowedScopes { get; init; }

    /// <summary>Scope patterns this agent may never hold; they win over every allow.</summary>
    public IReadOnlySet<string> DisallowedScopes { get; init; } = new HashSet<string>();

    /// <summary>The intervention point: scope patterns that need a human's approval before a token carries them.</summary>
    public IReadOnlySet<string> ApprovalScopes { get; init; } = new HashSet<string>();

    /// <summary>Tokens carrying a scope matching the pattern live at most this long (the lowest cap wins).</summary>
    public IReadOnlyList<ScopeTtlCap> ScopeTtlCaps { get; init; } = [];

    /// <summary>Context labels a request must carry, each with one of the listed values.</summary>
    public IReadOnlyDictionary<string, IReadOnlySet<string>> RequiredContext { get; init; } = new Dictionary<string, IReadOnlySet<string>>();

    /// <summary>When requests are allowed (UTC); empty = any time.</summary>
    public IReadOnlyList<TimeWindow> TimeWindows { get; init; } = [];

    /// <summary>Every token of this agent must be sender-constrained (mTLS <c>cnf.x5t#S256</c> or DPoP <c>cnf.jkt</c>).</summary>
    public bool SenderConstrained { get; init; }

    /// <summary>Tokens carrying a scope matching one of these patterns must be sender-constrained.</summary>
    public IReadOnlySet<string> SenderConstrainedScopes { get; init; } = new HashSet<string>();

    public TimeSpan MaxTokenTtl { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Lease duration when BeginTask gives no ttl (and the default extension on renew).</summary>
    public TimeSpan DefaultLeaseTtl { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>No lease of this agent lives longer than this from its start (waiting for approval and renewals included).</summary>
    public TimeSpan MaxLeaseLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Leases this agent may hold open at once; beyond it BeginTask is RESOURCE_EXHAUSTED.</summary>
    public int MaxConcurrentLeases { get; init; } = 100;

    /// <summary>New tasks per minute (rolling window); beyond it BeginTask is RESOURCE_EXHAUSTED with a retry hint.</summary>
    public int MaxTasksPerMinute { get; init; } = 600;

    public ScopePatternSet Allowed => _allowed ??= ScopePatternSet.Of(AllowedScopes);

    public ScopePatternSet Disallowed => _disallowed ??= ScopePatternSet.Of(DisallowedScopes);

    public ScopePatternSet Approval => _approval ??= ScopePatternSet.Of(ApprovalScopes);

    /// <summary>The first scope of <paramref name="scopes"/> that needs a sender-constrained token ("*" for the whole agent), or null.</summary>
    public string? SenderConstraintFor(IReadOnlyList<string> scopes)
    {
        if (SenderConstrained)
        {
            return "*";
        }

        if (SenderConstrainedScopes.Count == 0)
        {
            return null;
        }

        _senderConstrained ??= ScopePatternSet.Of(SenderConstrainedScopes);
        return scopes.FirstOrDefault(_senderConstrained.Matches);
    }

    /// <summary>The token lifetime cap for a token carrying <paramref name="scopes"/>: the agent's max, lowered by any per-scope cap.</summary>
    public TimeSpan TokenTtlFor(IReadOnlyList<string> scopes)
    {
        var ttl = MaxTokenTtl;
        foreach (var cap in ScopeTtlCaps)
        {
            if (cap.Ttl < ttl && scopes.Any(cap.Pattern.Matches))
            {
                ttl = cap.Ttl;
            }
        }

        return ttl;
    }
}

/// <summary>A per-scope token lifetime cap.</summary>
public sealed record ScopeTtlCap(ScopePattern Pattern, TimeSpan Ttl);

/// <summary>A weekly window in UTC: on <see cref="Days"/>, from <see cref="From"/> (inclusive) to <see cref="To"/> (exclusive).</summary>
public sealed record TimeWindow(IReadOnlySet<DayOfWeek> Days, TimeSpan From, TimeSpan To)
{
    public bool Contains(DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return Days.Contains(utc.DayOfWeek) && utc.TimeOfDay >= From && utc.TimeOfDay < To;
    }

    public override string ToString() =>
        $"{string.Join(",", Days.Order().Select(d => d.ToString()[..3].ToLowerInvariant()))} {From:hh\\:mm}-{To:hh\\:mm} UTC";
}
