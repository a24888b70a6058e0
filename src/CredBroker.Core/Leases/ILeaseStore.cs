namespace CredBroker.Core.Leases;

/// <summary>
/// Where leases live. Every method is atomic. Times are passed in (the broker's
/// <see cref="TimeProvider"/>) so stores never read their own clock. Adapters throw
/// <see cref="Broker.StoreUnavailableException"/> when the store cannot be reached.
/// Terminal states (completed, expired, revoked) are final; every transition bumps
/// <see cref="Lease.Generation"/>, and an <c>expectedGeneration</c> that does not match the stored
/// one changes nothing and reports <see cref="TransitionOutcome.Conflict"/>.
/// </summary>
public interface ILeaseStore
{
    /// <summary>
    /// Writes <paramref name="lease"/> and its indexes, unless the same agent already has a lease
    /// for the same task id: then nothing is written and that lease is returned (even at a quota
    /// limit). Refuses, writing nothing, when the agent is quarantined or <paramref name="quota"/>
    /// is exhausted, or when the lease would complete one of the quota's <see cref="LeaseQuota.ToxicGuards"/>
    /// with the agent's other active leases (checked and written in one atomic step). The open time
    /// (rate window) is <see cref="Lease.CreatedAt"/>.
    /// </summary>
    Task<LeaseOpenResult> OpenAsync(Lease lease, LeaseQuota quota, CancellationToken cancellationToken);

    Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken);

    /// <summary>The agent's lease for <paramref name="taskId"/> (while the store retains it), or null.</summary>
    Task<Lease?> FindByTaskAsync(string agentId, string taskId, CancellationToken cancellationToken);

    /// <summary>
    /// Active/pending → completed, with one revocation event and a deny entry. A lease past its
    /// deadline ends as expired instead (NotApplicable, no event); an ended lease is NotApplicable.
    /// With <paramref name="agentId"/>, a lease of another agent is NotFound and left untouched (the
    /// ownership check and the write are one step: one round trip on the hot path). The transition
    /// carries the lease's delegated children (<see cref="LeaseTransition.Children"/>) for the cascade.
    /// </summary>
    Task<LeaseTransition> CompleteAsync(string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken);

    /// <summary>
    /// Pending approval → active: the lease gets <paramref name="scopes"/> (the caller checks they
    /// narrow the request) and <paramref name="deadline"/> (clamped to its max), recording
    /// <paramref name="actor"/> and <paramref name="note"/> in its <see cref="Lease.Approval"/>.
    /// A lease that is not pending, or whose approval expired, is NotApplicable (nothing written).
    /// With <paramref name="toxicGuards"/>, an approval that would complete one of them with the agent's
    /// other active leases is <see cref="TransitionOutcome.ToxicCombination"/> (nothing written), checked
    /// in the same atomic step as the write (see <see cref="ToxicGuard"/>).
    /// Denying is <see cref="RevokeAsync"/>: on a pending lease it records the actor and reason the same way.
    /// </summary>
    Task<LeaseTransition> ApproveAsync(
        string leaseId, IReadOnlyList<string> scopes, DateTimeOffset deadline, string actor, string note, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken,
        IReadOnlyList<ToxicGuard>? toxicGuards = null);

    /// <summary>
    /// The agent's open leases (active or pending approval, deadline after <paramref name="now"/>),
    /// at most <paramref name="limit"/>, read from its open-lease index (the policy's view of what it holds).
    /// </summary>
    Task<IReadOnlyList<Lease>> ListOpenLeasesAsync(string agentId, DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>Moves an active lease's deadline to <paramref name="newDeadline"/> (clamped to its max, never earlier).</summary>
    Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken);

    /// <summary>
    /// Active/pending → revoked (ended = <paramref name="now"/>), with one revocation event and a deny
    /// entry. Idempotent: an ended lease is NotApplicable, returned as is, nothing written.
    /// </summary>
    Task<LeaseTransition> RevokeAsync(string leaseId, string reason, string actor, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken);

    /// <summary>
    /// The sweeper primitive: atomically takes up to <paramref name="limit"/> leases of
    /// <paramref name="shard"/> whose deadline is at or before <paramref name="now"/>, expires the
    /// open ones (ended = deadline) and returns them. A lease whose deadline moved is re-indexed,
    /// not expired. Concurrent callers never claim the same lease twice within
    /// <see cref="ExpiredLease.ClaimTimeout"/>: a claim not confirmed (<see cref="ConfirmExpiredAsync"/>)
    /// by then — its claimer died, was paused, or could not record the expiry — is returned again, first,
    /// by a later call, so every expiry is recorded at least once. A lease that a completion, revocation or
    /// quarantine found past its deadline before any claim is ended as expired by that call and returned here
    /// the same way (as a claim that already timed out). The result also says when the shard next has
    /// something due (<see cref="ExpiryClaim.NextDue"/>), so a sweeper can wake at that deadline instead of polling.
    /// </summary>
    Task<ExpiryClaim> ClaimExpiredAsync(int shard, DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>Confirms that the claimed expiries of <paramref name="shard"/> were recorded: they are not returned again.</summary>
    Task ConfirmExpiredAsync(int shard, IReadOnlyList<ExpiredLease> recorded, CancellationToken cancellationToken);

    /// <summary>
    /// Quarantines the agent from <paramref name="now"/>: refuses its opens, revokes its open leases
    /// and appends one agent event. Returns the number of leases revoked. Idempotent: an agent
    /// already quarantined keeps its original time and gets no second event.
    /// </summary>
    Task<int> QuarantineAgentAsync(string agentId, string reason, string actor, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Lifts a quarantine; true when there was one. Appends no event: the quarantine event's
    /// <see cref="RevocationEvent.NotAfter"/> keeps invalidating tokens issued before it, and
    /// tokens issued after a release are valid anyway.
    /// </summary>
    Task<bool> ReleaseAgentAsync(string agentId, string actor, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>When the agent was quarantined, or null when it is not.</summary>
    Task<DateTimeOffset?> GetAgentStatusAsync(string agentId, CancellationToken cancellationToken);

    /// <summary>
    /// Revocation events after <paramref name="after"/> (null: from the oldest retained), at most
    /// <paramref name="limit"/>, in per-shard order, with the cursor to continue from.
    /// </summary>
    Task<RevocationPage> ReadRevocationsAsync(RevocationCursor? after, int limit, CancellationToken cancellationToken);

    /// <summary>The tail of the revocation log: reading from it returns only events appended later.</summary>
    Task<RevocationCursor> CurrentRevocationCursorAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Records <paramref name="childLeaseId"/> as delegated from <paramref name="parentLeaseId"/>,
    /// only while the parent is active at <paramref name="now"/> (Applied); an ended parent is
    /// NotApplicable (reported, nothing written), an unknown one NotFound. The children index lives
    /// with the parent (its shard) and is retained as long as the parent lease.
    /// </summary>
    Task<LeaseTransition> AddChildAsync(string parentLeaseId, string childLeaseId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The leases recorded as delegated from <paramref name="leaseId"/> (direct children only).</summary>
    Task<IReadOnlyList<string>> GetChildrenAsync(string leaseId, CancellationToken cancellationToken);

    /// <summary>One page of leases for operators; states are reported as of <paramref name="now"/>.</summary>
    Task<LeasePage> ListLeasesAsync(LeaseQuery query, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>
/// What one <see cref="ILeaseStore.ClaimExpiredAsync"/> took (the list), and when the shard next has an expiry due:
/// the earliest deadline still indexed or the earliest unconfirmed claim's timeout, as of the claim; null when nothing is
/// pending. A lease opened or renewed after the claim can fall due earlier, so a sweeper still polls, only less often.
/// </summary>
public sealed class ExpiryClaim(IReadOnlyList<ExpiredLease> leases, DateTimeOffset? nextDue) : IReadOnlyList<ExpiredLease>
{
    public static ExpiryClaim Empty { get; } = new([], null);

    public DateTimeOffset? NextDue { get; } = nextDue;

    public int Count => leases.Count;

    public ExpiredLease this[int index] => leases[index];

    public IEnumerator<ExpiredLease> GetEnumerator() => leases.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A lease the sweeper expired, at its deadline. Kept minimal: the claim is the hot path of a mass expiry.</summary>
public sealed record ExpiredLease(string LeaseId, DateTimeOffset Deadline)
{
    /// <summary>How long a claimed expiry belongs to its claimer before another claim takes it again (unconfirmed).</summary>
    public static TimeSpan ClaimTimeout { get; } = TimeSpan.FromSeconds(3);
}

public enum OpenRefusal
{
    None,

    /// <summary>The agent is quarantined.</summary>
    Quarantined,

    /// <summary>The agent holds its maximum number of concurrent open leases.</summary>
    ConcurrencyLimit,

    /// <summary>The agent opened its maximum number of leases in the rolling window.</summary>
    RateLimit,

    /// <summary>The lease would complete a toxic combination with the agent's other active leases (<see cref="LeaseOpenResult.RuleId"/>).</summary>
    ToxicCombination,
}

/// <summary>
/// The outcome of an open. <see cref="Lease"/> is the stored lease (new or existing); it is null
/// exactly when the open was refused, and then <see cref="RetryAfter"/> may hint when to retry.
/// </summary>
public sealed record LeaseOpenResult(Lease? Lease, bool Created, OpenRefusal Refusal = OpenRefusal.None, TimeSpan? RetryAfter = null)
{
    /// <summary>For <see cref="OpenRefusal.ToxicCombination"/>: the guard's rule id.</summary>
    public string? RuleId { get; init; }

    public static LeaseOpenResult Refused(OpenRefusal refusal, TimeSpan? retryAfter = null) => new(null, false, refusal, retryAfter);

    public static LeaseOpenResult Toxic(string ruleId) => new(null, false, OpenRefusal.ToxicCombination) { RuleId = ruleId };
}

public enum TransitionOutcome
{
    /// <summary>The transition happened.</summary>
    Applied,

    /// <summary>The lease was already in a state the transition cannot leave (reported in <see cref="LeaseTransition.Lease"/>).</summary>
    NotApplicable,

    NotFound,

    /// <summary>The caller's expected generation is stale: nothing changed (the current lease is reported).</summary>
    Conflict,

    /// <summary>An approval would complete a toxic combination with the agent's other active leases (<see cref="LeaseTransition.RuleId"/>): nothing changed.</summary>
    ToxicCombination,
}

public sealed record LeaseTransition(TransitionOutcome Outcome, Lease? Lease)
{
    /// <summary>For <see cref="TransitionOutcome.ToxicCombination"/>: the guard's rule id.</summary>
    public string? RuleId { get; init; }

    /// <summary>
    /// The lease's delegated child lease ids, read in the same step as the transition (complete and
    /// revoke return them, so ending a lease needs no second read for its cascade); null = not read.
    /// </summary>
    public IReadOnlyList<string>? Children { get; init; }
}
