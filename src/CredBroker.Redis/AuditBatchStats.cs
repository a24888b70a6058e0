namespace CredBroker.Redis;

/// <summary>What the audit group commit did: batches written and the records they held (thread-safe counters).</summary>
public sealed class AuditBatchStats
{
    private long _batches;
    private long _records;
    private long _largest;

    public long Batches => Interlocked.Read(ref _batches);

    public long Records => Interlocked.Read(ref _records);

    /// <summary>The most records one batch held.</summary>
    public long Largest => Interlocked.Read(ref _largest);

    /// <summary>Records per batch on average (0 before the first batch).</summary>
    public double MeanBatch => Batches == 0 ? 0 : (double)Records / Batches;

    internal void Record(int size)
    {
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _records, size);
        long seen;
        while (size > (seen = Interlocked.Read(ref _largest)) && Interlocked.CompareExchange(ref _largest, size, seen) != seen)
        {
        }
    }
}
