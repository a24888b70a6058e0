namespace CredBroker.Core.Leases.InMemory;

/// <summary>
/// The in-memory revocation log: a list per shard, like the Redis stream per shard, keeping events
/// for <paramref name="retention"/> (measured on the appended events' times; the store has no clock).
/// Positions are <c>0-n</c> with one counter for all shards, so merging by position is append order.
/// Not thread-safe: the store calls it under its lock.
/// </summary>
internal sealed class InMemoryRevocationLog(TimeSpan retention)
{
    private readonly Queue<RevocationEvent>[] _shards = Enumerable.Range(0, LeaseIds.ShardCount).Select(_ => new Queue<RevocationEvent>()).ToArray();
    private readonly LogPosition[] _maxDeleted = new LogPosition[LeaseIds.ShardCount];
    private readonly LogPosition[] _last = new LogPosition[LeaseIds.ShardCount];
    private ulong _sequence;

    public void Append(int shard, Func<LogPosition, RevocationEvent> create)
    {
        var position = new LogPosition(0, ++_sequence);
        var log = _shards[shard];
        var appended = create(position);
        log.Enqueue(appended);
        _last[shard] = position;
        var cutoff = appended.At - retention;
        while (log.TryPeek(out var oldest) && oldest.At < cutoff)
        {
            _maxDeleted[shard] = log.Dequeue().Position;
        }
    }

    public RevocationCursor Tail() => new(_last);

    public RevocationPage Read(RevocationCursor? after, int limit)
    {
        var perShard = new List<IReadOnlyList<RevocationEvent>>(LeaseIds.ShardCount);
        var tooOld = false;
        for (var shard = 0; shard < LeaseIds.ShardCount; shard++)
        {
            var from = after?[shard] ?? LogPosition.Start;
            tooOld |= after is not null && _maxDeleted[shard] > from;
            perShard.Add(_shards[shard].Where(e => e.Position > from).Take(limit).ToList());
        }

        return RevocationFeed.Page(perShard, after ?? new RevocationCursor(_maxDeleted), limit, tooOld);
    }
}
