namespace CredBroker.Core.Leases;

public enum LeaseState
{
    PendingApproval,
    Active,
    Completed,
    Expired,
    Revoked,
}

/// <summary>One task's lease: the bound on every token minted for it.</summary>
public sealed record Lease
{
    public required string LeaseId { get; init; }

    public required string AgentId { get; init; }

    public required string TaskId { get; init; }

    public required string Owner { get; init; }

    public required string Purpose { get; init; }

    public required string Audience { get; init; }

    /// <summary>The granted scopes, sorted; tokens of this lease carry a subset of them.</summary>
    public required IReadOnlyList<string> Scopes { get; init; }

    public required LeaseState State { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The task's timeout: when it passes the lease is expired and its tokens are dead.</summary>
    public required DateTimeOffset Deadline { get; init; }

    /// <summary>Renewals never move <see cref="Deadline"/> past this.</summary>
    public required DateTimeOffset MaxDeadline { get; init; }

    /// <summary>Bumped by every transition; fences stale writers.</summary>
    public long Generation { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>
    /// Whom the lease acts for when that is not the agent itself: the user (delegation on behalf of
    /// a user) or the principal of the parent token (sub-agent delegation). Tokens carry it as
    /// <c>sub</c>; null means the agent acts for itself.
    /// </summary>
    public string? Subject { get; init; }

    /// <summary>
    /// The earlier actors of a delegation chain, nearest first (the parent agent, its parent, …);
    /// tokens nest them under <c>act</c> below the agent. Parallel to <see cref="ParentLeaseIds"/>.
    /// </summary>
    public IReadOnlyList<string> Actors { get; init; } = [];

    /// <summary>
    /// The leases this one was delegated from, nearest first. Tokens carry them as
    /// <c>parent_lease_ids</c> and are invalid once any of them ends; ending a parent ends this lease.
    /// </summary>
    public IReadOnlyList<string> ParentLeaseIds { get; init; } = [];

    /// <summary>The context the lease was granted on, sorted by key, each label with its source (asserted or a verified claim).</summary>
    public IReadOnlyList<Policy.ContextLabel> Context { get; init; } = [];

    /// <summary>
    /// The RFC 7638 thumbprint of the DPoP key the lease was opened with: every token of the lease is
    /// bound to it (<c>cnf.jkt</c>), and IssueToken/RenewLease need a proof by that key. Null: not DPoP-bound.
    /// </summary>
    public string? DpopKeyThumbprint { get; init; }

    /// <summary>Set on a lease that began as <see cref="LeaseState.PendingApproval"/>: what was asked, why, and the operator's decision.</summary>
    public LeaseApproval? Approval { get; init; }

    /// <summary>The state as of <paramref name="now"/>: an active lease past its deadline is expired even before a sweep records it.</summary>
    public LeaseState StateAt(DateTimeOffset now) =>
        State is LeaseState.Active or LeaseState.PendingApproval && now >= Deadline ? LeaseState.Expired : State;

    public bool IsTerminal => State is LeaseState.Completed or LeaseState.Expired or LeaseState.Revoked;
}

public static class LeaseStateNames
{
    public static string ToWire(this LeaseState state) => state switch
    {
        LeaseState.PendingApproval => "pending_approval",
        LeaseState.Active => "active",
        LeaseState.Completed => "completed",
        LeaseState.Expired => "expired",
        LeaseState.Revoked => "revoked",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static LeaseState FromWire(string value) => value switch
    {
        "pending_approval" => LeaseState.PendingApproval,
        "active" => LeaseState.Active,
        "completed" => LeaseState.Completed,
        "expired" => LeaseState.Expired,
        "revoked" => LeaseState.Revoked,
        _ => throw new FormatException($"Unknown lease state '{value}'."),
    };
}
