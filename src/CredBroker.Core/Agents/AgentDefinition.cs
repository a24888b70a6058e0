namespace CredBroker.Core.Agents;

/// <summary>
/// An agent the owner approved: who owns it, what it is for, which scopes (tools) it may hold,
/// which it may never hold, which need a human first, and how long its tokens and leases live.
/// </summary>
public sealed record AgentDefinition
{
    public required string Id { get; init; }

    public required string Owner { get; init; }

    public required string Purpose { get; init; }

    /// <summary>Audiences (downstream APIs) tokens may be minted for; the first is the default.</summary>
    public required IReadOnlyList<string> Audiences { get; init; }

    public required IReadOnlySet<string> AllowedScopes { get; init; }

    /// <summary>Scopes this agent may never hold; they win over every allow.</summary>
    public IReadOnlySet<string> DisallowedScopes { get; init; } = new HashSet<string>();

    /// <summary>The intervention point: scopes that need a human's approval before a token carries them.</summary>
    public IReadOnlySet<string> ApprovalScopes { get; init; } = new HashSet<string>();

    public TimeSpan MaxTokenTtl { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Lease duration when BeginTask gives no ttl (and the default extension on renew).</summary>
    public TimeSpan DefaultLeaseTtl { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>No lease of this agent lives longer than this from its start, renewals included.</summary>
    public TimeSpan MaxLeaseLifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Leases this agent may hold open at once; beyond it BeginTask is RESOURCE_EXHAUSTED.</summary>
    public int MaxConcurrentLeases { get; init; } = 100;

    /// <summary>New tasks per minute (rolling window); beyond it BeginTask is RESOURCE_EXHAUSTED with a retry hint.</summary>
    public int MaxTasksPerMinute { get; init; } = 600;
}
