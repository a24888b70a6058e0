namespace CredBroker.Core.Leases;

/// <summary>
/// The approval record of a lease that needed a human. While pending, the lease's scopes are the
/// ones asked for and its deadline is when the approval expires; approving makes it active with
/// the (possibly narrowed) scopes and a deadline of approval time + <see cref="LeaseTtl"/>;
/// denying revokes it, recording <see cref="DecidedBy"/> and <see cref="Note"/>.
/// </summary>
public sealed record LeaseApproval
{
    /// <summary>The scopes the agent asked for (after policy narrowing): a repeated BeginTask is compared with these.</summary>
    public required IReadOnlyList<string> RequestedScopes { get; init; }

    /// <summary>The scopes that need approval (a subset of the lease's requested scopes).</summary>
    public required IReadOnlyList<string> ApprovalScopes { get; init; }

    /// <summary>The lease duration the agent asked for, applied from the moment of approval.</summary>
    public required TimeSpan LeaseTtl { get; init; }

    /// <summary>Why policy asked for a human (the decision's reason).</summary>
    public required string Reason { get; init; }

    /// <summary>The decision's rule ids.</summary>
    public required IReadOnlyList<string> RuleIds { get; init; }

    /// <summary>True once approved, false once denied or withdrawn, null while undecided (or expired).</summary>
    public bool? Approved { get; init; }

    /// <summary>The operator who approved or denied; null while pending or when it expired.</summary>
    public string? DecidedBy { get; init; }

    /// <summary>The operator's note (the reason for a denial).</summary>
    public string? Note { get; init; }
}
