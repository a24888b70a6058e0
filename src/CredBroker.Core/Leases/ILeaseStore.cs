namespace CredBroker.Core.Leases;

/// <summary>
/// Where leases live. Every method is atomic. Times are passed in (the broker's
/// <see cref="TimeProvider"/>) so stores never read their own clock. Adapters throw
/// <see cref="Broker.StoreUnavailableException"/> when the store cannot be reached.
/// </summary>
public interface ILeaseStore
{
    /// <summary>
    /// Writes <paramref name="lease"/> and its deadline index entry, unless the same agent already
    /// has a lease for the same task id: then nothing is written and that lease is returned.
    /// </summary>
    Task<LeaseOpenResult> OpenAsync(Lease lease, CancellationToken cancellationToken);

    Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken);

    /// <summary>Active → completed. Idempotent: a lease already ended keeps its state; one past its deadline ends as expired.</summary>
    Task<LeaseTransition> CompleteAsync(string leaseId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Moves an active lease's deadline to <paramref name="newDeadline"/> (clamped to its max, never earlier).</summary>
    Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Lease ids whose deadline is at or before <paramref name="now"/>, from the deadline index, oldest first.</summary>
    Task<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);
}

public sealed record LeaseOpenResult(Lease Lease, bool Created);

public enum TransitionOutcome
{
    /// <summary>The transition happened.</summary>
    Applied,

    /// <summary>The lease was already in a state the transition cannot leave (reported in <see cref="LeaseTransition.Lease"/>).</summary>
    NotApplicable,

    NotFound,
}

public sealed record LeaseTransition(TransitionOutcome Outcome, Lease? Lease);
