namespace CredBroker.Core.Leases;

/// <summary>Settings every store honours the same way.</summary>
public sealed record LeaseStoreOptions
{
    /// <summary>Retained revocation events per shard (Redis: <c>XADD MAXLEN ~</c>, so approximately).</summary>
    public int RevocationLogMaxLength { get; init; } = 100_000;

    /// <summary>How long a lease is kept after its max deadline (every token of it is long dead by then).</summary>
    public static TimeSpan Retention { get; } = TimeSpan.FromHours(24);

    /// <summary>When a store may drop the lease: its max deadline plus <see cref="Retention"/>. Never changes.</summary>
    public static DateTimeOffset RetainedUntil(Lease lease) => lease.MaxDeadline + Retention;
}
