namespace CredBroker.Core.Dpop;

/// <summary>
/// Where the broker remembers the DPoP proofs (RFC 9449) it accepted, so a proof is used once across
/// every replica: a proof's key (thumbprint + <c>jti</c>, hashed) is recorded with a bounded time to
/// live, the proof's acceptance window. Production: Redis (<c>SET NX PX</c>), shared by the replicas;
/// dev: <see cref="InMemoryDpopReplayStore"/>. An unreachable store throws
/// <see cref="Broker.StoreUnavailableException"/>: no proof is accepted unchecked.
/// </summary>
public interface IDpopReplayStore
{
    /// <summary>True the first time <paramref name="key"/> is recorded within <paramref name="ttl"/>; false for a replay (or when the store is full).</summary>
    ValueTask<bool> TryRecordAsync(string key, TimeSpan ttl, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="IDpopReplayStore"/> in one process (dev mode, tests): bounded, so a flood of proofs
/// cannot grow it without limit; when <see cref="Capacity"/> live entries are held, new proofs are
/// refused rather than checked less.
/// </summary>
public sealed class InMemoryDpopReplayStore(TimeProvider time, int capacity = 100_000) : IDpopReplayStore
{
    private readonly Dictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, DateTimeOffset> _expiry = new();
    private readonly Lock _gate = new();

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity));

    public ValueTask<bool> TryRecordAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            while (_expiry.TryPeek(out var oldest, out var at) && at <= now)
            {
                _expiry.Dequeue();
                if (_seen.TryGetValue(oldest, out var until) && until <= now)
                {
                    _seen.Remove(oldest);
                }
            }

            if (_seen.TryGetValue(key, out var live) && live > now || _seen.Count >= Capacity)
            {
                return ValueTask.FromResult(false);
            }

            _seen[key] = now + ttl;
            _expiry.Enqueue(key, now + ttl);
            return ValueTask.FromResult(true);
        }
    }
}
