namespace CredBroker.Core.Leases;

/// <summary>
/// Per-agent limits checked atomically by <see cref="ILeaseStore.OpenAsync"/>: leases open at once
/// (an open lease past its deadline no longer counts), and opens per rolling window. Null = no limit.
/// <see cref="ToxicGuards"/>: toxic combinations across the agent's leases, checked in the same step.
/// </summary>
public sealed record LeaseQuota(int? MaxConcurrent = null, int? MaxOpensPerWindow = null, TimeSpan? Window = null)
{
    public static LeaseQuota Unlimited { get; } = new();

    /// <summary>
    /// Combinations the new lease must not complete with the agent's other active leases (empty: the
    /// store reads none of them, the fast path). See <see cref="ToxicGuard"/>.
    /// </summary>
    public IReadOnlyList<ToxicGuard> ToxicGuards { get; init; } = [];

    public TimeSpan RateWindow => Window ?? TimeSpan.FromSeconds(60);

    public void Validate()
    {
        if (MaxConcurrent is < 1 || MaxOpensPerWindow is < 1)
        {
            throw new ArgumentException("Quota limits must be at least 1 (or null for no limit).");
        }

        if (RateWindow < TimeSpan.FromMilliseconds(1) || RateWindow > TimeSpan.FromDays(1))
        {
            throw new ArgumentException("The quota window must be between 1 ms and 1 day.");
        }

        foreach (var guard in ToxicGuards)
        {
            guard.Validate();
        }
    }
}
