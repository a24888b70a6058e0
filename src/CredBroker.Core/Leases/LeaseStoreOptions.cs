namespace CredBroker.Core.Leases;

/// <summary>Settings every store honours the same way.</summary>
public sealed record LeaseStoreOptions
{
    /// <summary>The default <see cref="RevocationRetention"/>: the validation library's default longest token lifetime (1 h) plus its clock skew (60 s).</summary>
    public static TimeSpan DefaultRevocationRetention { get; } = TimeSpan.FromHours(1) + TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a revocation event is kept, by time, never by count: at least the longest token
    /// lifetime plus the validators' clock skew, so a validator that starts over (no cursor) still
    /// replays every revocation whose tokens can be alive. Older events are dropped as new ones are
    /// appended (Redis: <c>XTRIM MINID</c> on the server's clock; in memory: the appended event's time);
    /// a reader whose cursor predates dropped history is told (<see cref="RevocationPage.CursorTooOld"/>).
    /// </summary>
    public TimeSpan RevocationRetention { get; init; } = DefaultRevocationRetention;

    /// <summary>Throws unless <see cref="RevocationRetention"/> is between 1 s and 30 days.</summary>
    public void Validate()
    {
        if (RevocationRetention < TimeSpan.FromSeconds(1) || RevocationRetention > TimeSpan.FromDays(30))
        {
            throw new ArgumentOutOfRangeException(nameof(RevocationRetention), RevocationRetention, "The revocation retention must be between 1 s and 30 days.");
        }
    }

    /// <summary>How long a lease is kept after its max deadline (every token of it is long dead by then).</summary>
    public static TimeSpan Retention { get; } = TimeSpan.FromHours(24);

    /// <summary>When a store may drop the lease: its max deadline plus <see cref="Retention"/>. Never changes.</summary>
    public static DateTimeOffset RetainedUntil(Lease lease) => lease.MaxDeadline + Retention;
}
