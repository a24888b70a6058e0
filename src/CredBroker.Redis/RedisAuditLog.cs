using System.Globalization;
using System.Threading.Channels;
using CredBroker.Core.Audit;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// <see cref="IAuditLog"/> on a Redis Stream. Each entry holds seq, prev, hash and the canonical
/// body; a head hash holds the chain's end and its retention anchor; signed checkpoints go to a
/// second stream in the same append script. All keys share one hash tag (one slot on a cluster).
/// Run Redis with <c>appendonly yes</c>, <c>appendfsync always</c>: an append is acknowledged,
/// and the action it records goes ahead, only once it is on disk.
/// </summary>
public sealed class RedisAuditLog : IAuditLog, IDisposable
{
    /// <summary>How long an append keeps retrying a head that other replicas keep moving before it fails closed.</summary>
    private static readonly TimeSpan ContentionBudget = TimeSpan.FromSeconds(3);
    private readonly RedisMultiplexer _connection;
    private readonly bool _ownsConnection;
    private readonly IAuditSigner _signer;
    private readonly AuditLogOptions _options;
    private readonly TimeProvider _time;
    private readonly Channel<PendingAppend> _queue = Channel.CreateBounded<PendingAppend>(new BoundedChannelOptions(MaxQueued) { SingleReader = true });
    private readonly Task _writer;
    private readonly AuditBatchStats _batches = new();
    private (long Sequence, string Hash) _head = (0, AuditChain.GenesisHash);

    private readonly RedisMultiplexer? _durable;
    private readonly RedisReplicaAcks? _acks;

    private RedisAuditLog(
        RedisMultiplexer connection, bool ownsConnection, string keyPrefix, IAuditSigner signer, AuditLogOptions options, TimeProvider time,
        RedisMultiplexer? durable = null, RedisReplicaAcks? acks = null)
    {
        options.Validate();
        _connection = connection;
        _durable = durable;
        _acks = acks;
        _ownsConnection = ownsConnection;
        _signer = signer;
        _options = options;
        _time = time;
        KeyPrefix = keyPrefix;
        LogKey = keyPrefix + "log";
        HeadKey = keyPrefix + "head";
        CheckpointsKey = keyPrefix + "checkpoints";
        ReservationKey = keyPrefix + "reservation";
        _writer = Task.Run(WriteBatchesAsync);
    }

    /// <summary>A batch stops growing at this many bytes of record bodies (Redis takes up to 512 MB per call; this keeps one call short).</summary>
    private const long MaxBatchBytes = 1 << 20;

    /// <summary>Appends waiting at most; beyond it an append fails closed at once instead of queueing without bound.</summary>
    private const int MaxQueued = 10_000;

    /// <summary>How many batches were written, and how many records they held (for the benchmark and metrics).</summary>
    public AuditBatchStats Batches => _batches;

    /// <summary>The default key family (<c>cb:{audit}:</c>); another prefix keeps several chains on one server apart.</summary>
    public const string DefaultKeyPrefix = "cb:{audit}:";

    internal string KeyPrefix { get; }

    internal AuditLogOptions Options => _options;

    internal RedisKey LogKey { get; }

    internal RedisKey HeadKey { get; }

    internal RedisKey CheckpointsKey { get; }

    private RedisKey ReservationKey { get; }

    private string ReplicaId { get; } = Guid.NewGuid().ToString("N");

    /// <summary>
    /// Connects without failing when Redis is down at start; appends and reads fail closed until it is
    /// back, each bounded by the connection's timeout (a stopped Redis never hangs /readyz or a mint).
    /// </summary>
    /// <remarks>
    /// With <paramref name="replicaAcks"/>, every batch is followed by <c>WAIT</c> for that many replicas (on a second
    /// connection, the one that wrote, so reads never queue behind it): a failover to a replica cannot roll back
    /// records whose actions went ahead. Too few acknowledgements fail the batch's callers closed (the records stay in
    /// the chain on the primary; the actions they record do not go ahead).
    /// </remarks>
    public static RedisAuditLog Connect(
        string configuration, IAuditSigner signer, AuditLogOptions? options = null, TimeProvider? time = null, string keyPrefix = DefaultKeyPrefix,
        RedisConnectionOptions? connection = null, RedisReplicaAcks? replicaAcks = null)
    {
        var (main, durable) = RedisReplicaAcks.Connect(configuration, connection ?? new RedisConnectionOptions(), replicaAcks);
        return new RedisAuditLog(main, true, keyPrefix, signer, options ?? new AuditLogOptions(), time ?? TimeProvider.System, durable, replicaAcks);
    }

    private IDatabase Db => _connection.Current.GetDatabase();

    public Task<AuditRecord> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var pending = new PendingAppend(AuditEventJson.Write(auditEvent));
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new AuditUnavailableException(_queue.Reader.Completion.IsCompleted
                ? "the audit log is shut down"
                : $"{MaxQueued} appends are already waiting for the audit store (it is slow or down)");
        }

        // The caller stops waiting when it is cancelled; the record, once queued, is still written (the
        // chain never has a gap), exactly as when a cancellation arrives while a single append is in flight.
        return pending.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// The group commit: takes every append queued while the previous batch was being written (up to
    /// <see cref="AuditLogOptions.MaxBatch"/> records and <see cref="MaxBatchBytes"/>), chains them from
    /// the head, and writes them in one script call, so one round trip and one fsync serve the whole batch.
    /// Each caller is released with its own record once the batch is durable, or with the failure.
    /// </summary>
    private async Task WriteBatchesAsync()
    {
        var batch = new List<PendingAppend>(_options.MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            var bytes = 0L;
            while (batch.Count < _options.MaxBatch && bytes < MaxBatchBytes && reader.TryRead(out var next))
            {
                batch.Add(next);
                bytes += next.Body.Length;
            }

            try
            {
                var records = await WriteAsync(batch).ConfigureAwait(false);
                _batches.Record(batch.Count);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(records[i]);
                }
            }
            catch (Exception e)
            {
                var failure = e as AuditUnavailableException ?? new AuditUnavailableException("the audit append failed: " + e.GetType().Name, e);
                batch.ForEach(p => p.Completion.TrySetException(failure));
            }
        }
    }

    private async Task<AuditRecord[]> WriteAsync(List<PendingAppend> batch)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var records = new AuditRecord[batch.Count];
        var args = new RedisValue[AuditScripts.FirstRecordArg - 1 + (AuditScripts.ValuesPerRecord * batch.Count)];
        for (var attempt = 0; System.Diagnostics.Stopwatch.GetElapsedTime(started) < ContentionBudget; attempt++)
        {
            var (sequence, previous) = _head;
            args[0] = sequence;
            args[1] = previous;
            args[2] = ReplicaId;
            args[3] = batch.Count;
            args[4] = _options.MaxRecords;
            args[5] = (long)(_options.MaxAge?.TotalMilliseconds ?? 0);
            args[6] = AuditChain.GenesisHash;
            args[7] = _options.CheckpointInterval;
            var state = new AuditLogState(0, AuditChain.GenesisHash, sequence, previous);
            for (var i = 0; i < batch.Count; i++)
            {
                var record = AuditChain.Next(state, batch[i].Body);
                records[i] = record;
                state = state with { HeadSequence = record.Sequence, HeadHash = record.Hash };
                var checkpoint = record.Sequence % _options.CheckpointInterval == 0
                    ? AuditCheckpoint.Create(_signer, record.Sequence, record.Hash, _time.GetUtcNow(), _options.CheckpointInterval)
                    : null;
                var at = AuditScripts.FirstRecordArg - 1 + (AuditScripts.ValuesPerRecord * i);
                args[at] = record.Hash;
                args[at + 1] = record.Body;
                args[at + 2] = checkpoint?.Time.ToUnixTimeMilliseconds() ?? 0;
                args[at + 3] = checkpoint?.KeyId ?? "";
                args[at + 4] = checkpoint?.Signature ?? "";
            }

            // One multiplexer and one node for the batch and its WAIT (neither may change in between); with WAIT no
            // cluster redirect is followed, so the WAIT reaches the node that took the write (RedisReplicaAcks.EvaluateOnNodeAsync).
            var connection = (_durable ?? _connection).Current;
            RedisResult[] result;
            System.Net.EndPoint? primary = null;
            if (_durable is null)
            {
                result = (RedisResult[])(await Run(() => connection.GetDatabase().ScriptEvaluateAsync(AuditScripts.Append, [LogKey, HeadKey, CheckpointsKey, ReservationKey], args)).ConfigureAwait(false))!;
            }
            else
            {
                var (written, node) = await Run(() => RedisReplicaAcks.EvaluateOnNodeAsync(connection, AuditScripts.Append, [LogKey, HeadKey, CheckpointsKey, ReservationKey], args)).ConfigureAwait(false);
                (result, primary) = ((RedisResult[])written!, node);
            }

            if ((string)result[0]! == "ok")
            {
                if (result.Length != batch.Count + 1)
                {
                    throw new AuditUnavailableException($"the audit store answered {result.Length - 1} positions for {batch.Count} records");
                }

                _head = (state.HeadSequence, state.HeadHash);
                for (var i = 0; i < records.Length; i++)
                {
                    records[i] = records[i] with { Position = (string)result[i + 1]! };
                }

                await WaitForReplicasAsync(connection, primary).ConfigureAwait(false);
                // Witnessed once durable as configured: with replica acks, records a failover may still take away (their
                // WAIT fell short, so the actions they record did not go ahead) are not yet a head this broker vouches for.
                Witness(_head);
                return records;
            }

            // Another replica appended first: continue from its head (this replica now holds the reservation),
            // or another replica holds the reservation: let it append first.
            _head = (long.Parse((string)result[1]!, CultureInfo.InvariantCulture), (string)result[2]!);
            if (_acks is null)
            {
                // With replica acks another replica's head is not vouched for here (it may be a batch whose WAIT has not
                // confirmed it yet, which a failover can take away); that replica witnesses it once confirmed.
                Witness(_head);
            }

            if ((string)result[0]! == "reserved")
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1 + attempt, 10))).ConfigureAwait(false);
            }
        }

        throw new AuditUnavailableException($"the audit head kept moving for {ContentionBudget.TotalSeconds:0} s (too much contention between replicas)");
    }

    /// <summary>With replica acks: WAIT on the connection that wrote, to the node that owns the chain's slot.</summary>
    private async Task WaitForReplicasAsync(ConnectionMultiplexer connection, System.Net.EndPoint? primary)
    {
        if (primary is null || _acks is null)
        {
            return;
        }

        if (await Run(() => _acks.UnconfirmedAsync(connection, HeadKey, primary)).ConfigureAwait(false) is { } shortfall)
        {
            throw new AuditUnavailableException(
                $"Redis replicas did not confirm the audit records: {shortfall} (the records are in the chain on the primary; the actions they record do not go ahead)");
        }
    }

    /// <summary>A queued append: the canonical body and the caller waiting for its record.</summary>
    private sealed class PendingAppend(string body)
    {
        public string Body { get; } = body;

        public TaskCompletionSource<AuditRecord> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public async Task<IReadOnlyList<AuditRecord>> ReadAsync(string? afterPosition, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        cancellationToken.ThrowIfCancellationRequested();
        var entries = (RedisResult[])(await Run(() => Db.ExecuteAsync("XRANGE", LogKey, afterPosition is null ? "-" : "(" + afterPosition, "+", "COUNT", limit)))!;
        var records = new List<AuditRecord>(entries.Length);
        foreach (var entry in entries)
        {
            var parts = (RedisResult[])entry!;
            var fields = Fields(parts[1]);
            records.Add(new AuditRecord(
                long.TryParse(fields.GetValueOrDefault("seq"), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) ? seq : -1,
                fields.GetValueOrDefault("prev") ?? "", fields.GetValueOrDefault("hash") ?? "", fields.GetValueOrDefault("body") ?? "", (string)parts[0]!));
        }

        return records;
    }

    public async Task<AuditLogState> GetStateAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // The witness before the head: the store's head can only have moved past it since (unless rolled back).
        var witness = Volatile.Read(ref _witnessBox);
        var values = await Run(() => Db.HashGetAsync(HeadKey, ["seq", "hash", "anchor_seq", "anchor_hash", "anchor_time", "anchor_kid", "anchor_sig", "anchor_interval"]));
        AuditCheckpoint? anchor = null;
        if (!values[5].IsNull)
        {
            anchor = new AuditCheckpoint(
                Number(values[2]), (string?)values[3] ?? "", DateTimeOffset.FromUnixTimeMilliseconds(Number(values[4])),
                (string?)values[5] ?? "", (string?)values[6] ?? "", (int)Math.Clamp(Number(values[7]), 0, int.MaxValue));
        }

        return new AuditLogState(
            Number(values[2]), values[3].IsNull ? AuditChain.GenesisHash : (string)values[3]!,
            Number(values[0]), values[1].IsNull ? AuditChain.GenesisHash : (string)values[1]!)
        {
            Anchor = anchor, CheckpointInterval = _options.CheckpointInterval, WitnessSequence = witness.Sequence, WitnessHash = witness.Hash,
        };
    }

    private static long Number(RedisValue value) =>
        long.TryParse((string?)value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) ? number : 0;

    private WitnessBox _witnessBox = new(0, AuditChain.GenesisHash);

    /// <summary>Raises the high-water mark (never lowers it): a store rolled back below it is reported by verification.</summary>
    private void Witness((long Sequence, string Hash) seen)
    {
        if (seen.Sequence > _witnessBox.Sequence)
        {
            Volatile.Write(ref _witnessBox, new WitnessBox(seen.Sequence, seen.Hash));
        }
    }

    private sealed record WitnessBox(long Sequence, string Hash);

    public async Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var entries = (RedisResult[])(await Run(() => Db.ExecuteAsync("XRANGE", CheckpointsKey, "-", "+")))!;
        return entries.Select(entry =>
        {
            var fields = Fields(((RedisResult[])entry!)[1]);
            return new AuditCheckpoint(
                long.Parse(fields.GetValueOrDefault("seq") ?? "0", CultureInfo.InvariantCulture), fields.GetValueOrDefault("hash") ?? "",
                DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(fields.GetValueOrDefault("time") ?? "0", CultureInfo.InvariantCulture)),
                fields.GetValueOrDefault("kid") ?? "", fields.GetValueOrDefault("sig") ?? "",
                int.TryParse(fields.GetValueOrDefault("interval"), NumberStyles.None, CultureInfo.InvariantCulture, out var interval) ? interval : 0);
        }).ToList();
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _writer.Wait(TimeSpan.FromSeconds(5));
        if (_ownsConnection)
        {
            _durable?.Dispose();
            _connection.Dispose();
        }
    }

    private static Dictionary<string, string> Fields(RedisResult flat)
    {
        var values = (RedisResult[])flat!;
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < values.Length; i += 2)
        {
            fields[(string)values[i]!] = (string)values[i + 1]!;
        }

        return fields;
    }

    private static async Task<T> Run<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException or TimeoutException or ObjectDisposedException or RedisServerException)
        {
            throw new AuditUnavailableException("the audit store (Redis) is unreachable or refused the write: " + e.GetType().Name, e);
        }
    }
}
