namespace CredBroker.Validation;

/// <summary>
/// The <c>jti</c>s of accepted DPoP proofs, in memory, each kept until its proof could no longer be
/// accepted anyway, and bounded: when <see cref="Capacity"/> live entries are held, new proofs are
/// refused (<see cref="DpopErrors.ReplayCacheFull"/>) rather than checked less. One instance serves
/// one process; instances behind a load balancer that accept the same proofs need a shared store.
/// </summary>
public sealed class DpopReplayCache(int capacity = 100_000)
{
    private readonly Dictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, DateTimeOffset> _expiry = new();
    private readonly Lock _gate = new();

    /// <summary>Most live entries held at once.</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity));

    /// <summary>Live entries right now (expired ones are dropped on the next add).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _seen.Count;
            }
        }
    }

    /// <summary>Records <paramref name="key"/> until <paramref name="expiresAt"/>: <see cref="ReplayOutcome.First"/> the first time, <see cref="ReplayOutcome.Replayed"/> after.</summary>
    public ReplayOutcome TryAdd(string key, DateTimeOffset expiresAt, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        lock (_gate)
        {
            while (_expiry.TryPeek(out var oldest, out var at) && at <= now)
            {
                _expiry.Dequeue();
                if (_seen.TryGetValue(oldest, out var current) && current <= now)
                {
                    _seen.Remove(oldest);
                }
            }

            if (_seen.TryGetValue(key, out var until) && until > now)
            {
                return ReplayOutcome.Replayed;
            }

            if (_seen.Count >= Capacity)
            {
                return ReplayOutcome.Full;
            }

            _seen[key] = expiresAt;
            _expiry.Enqueue(key, expiresAt);
            return ReplayOutcome.First;
        }
    }
}

/// <summary>What a replay cache said about a proof's <c>jti</c>.</summary>
public enum ReplayOutcome
{
    /// <summary>Not seen before: now recorded.</summary>
    First,

    /// <summary>Seen within its lifetime: a replay.</summary>
    Replayed,

    /// <summary>The cache is full of live entries; refuse the proof.</summary>
    Full,
}
