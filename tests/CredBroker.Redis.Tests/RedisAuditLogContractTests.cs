using CredBroker.Core.Audit;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>The audit contract against a real redis-server, tampering with raw Redis commands; plus Redis-only behaviour.</summary>
[TestFixture("resp2")]
[TestFixture("resp3")]
[NonParallelizable]
public sealed class RedisAuditLogContractTests(string protocol) : AuditLogContract
{
    private readonly List<RedisAuditLog> _logs = [];
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _raw = null!;

    private IDatabase Db => _raw.GetDatabase();

    [OneTimeSetUp]
    public void StartRedis()
    {
        _redis = RedisServer.Start();
        _raw = ConnectionMultiplexer.Connect(_redis.ConnectionString);
    }

    [OneTimeTearDown]
    public void StopRedis()
    {
        _logs.ForEach(l => l.Dispose());
        _raw.Dispose();
        _redis.Dispose();
    }

    protected override IAuditLog CreateLog(AuditLogOptions options) => Connect(options, "t" + Guid.NewGuid().ToString("N")[..8]);

    private RedisAuditLog Connect(AuditLogOptions options, string chain)
    {
        var log = RedisAuditLog.Connect(_redis.ConnectionString + ",protocol=" + protocol, Signer, options, keyPrefix: "cb:{audit-" + chain + "}:");
        _logs.Add(log);
        return log;
    }

    protected override async Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash, string? previousHash)
    {
        // Stream entries cannot be edited in place: rebuild the stream with the same ids, one entry changed.
        var redis = (RedisAuditLog)log;
        var entries = await redis.ReadAsync(null, 100_000, default);
        await Db.KeyDeleteAsync(redis.LogKey);
        foreach (var entry in entries)
        {
            var (previous, content, hash) = (entry.PreviousHash, entry.Body, entry.Hash);
            if (entry.Sequence == sequence)
            {
                previous = previousHash ?? previous;
                content = body;
                hash = recomputeHash ? AuditChain.Hash(sequence, previous, body) : hash;
            }

            await Db.ExecuteAsync("XADD", redis.LogKey, entry.Position, "seq", entry.Sequence, "prev", previous, "hash", hash, "body", content);
        }
    }

    protected override async Task DeleteAsync(IAuditLog log, long sequence)
    {
        var redis = (RedisAuditLog)log;
        var entry = (await redis.ReadAsync(null, 100_000, default)).Single(e => e.Sequence == sequence);
        await Db.ExecuteAsync("XDEL", redis.LogKey, entry.Position);
    }

    protected override async Task TruncateAsync(IAuditLog log, long keepThrough, bool rewriteHead)
    {
        var redis = (RedisAuditLog)log;
        var entries = await redis.ReadAsync(null, 100_000, default);
        foreach (var entry in entries.Where(e => e.Sequence > keepThrough))
        {
            await Db.ExecuteAsync("XDEL", redis.LogKey, entry.Position);
        }

        if (rewriteHead)
        {
            var last = entries.Where(e => e.Sequence <= keepThrough).Last();
            await Db.HashSetAsync(redis.HeadKey, [new HashEntry("seq", last.Sequence), new HashEntry("hash", last.Hash)]);
        }
    }

    protected override async Task DeleteCheckpointsAsync(IAuditLog log, long after)
    {
        var redis = (RedisAuditLog)log;
        foreach (var entry in (RedisResult[])(await Db.ExecuteAsync("XRANGE", redis.CheckpointsKey, "-", "+"))!)
        {
            var parts = (RedisResult[])entry!;
            var fields = (RedisResult[])parts[1]!;
            var seq = long.Parse((string)fields[Array.FindIndex(fields, f => (string?)f == "seq") + 1]!, System.Globalization.CultureInfo.InvariantCulture);
            if (seq > after)
            {
                await Db.ExecuteAsync("XDEL", redis.CheckpointsKey, (string)parts[0]!);
            }
        }
    }

    protected override async Task ReplaceCheckpointsAsync(IAuditLog log, IEnumerable<AuditCheckpoint> checkpoints)
    {
        var redis = (RedisAuditLog)log;
        foreach (var c in checkpoints)
        {
            await Db.ExecuteAsync("XADD", redis.CheckpointsKey, "*", "seq", c.Sequence, "hash", c.Hash, "time", c.Time.ToUnixTimeMilliseconds(), "kid", c.KeyId, "sig", c.Signature, "interval", c.Interval);
        }
    }

    protected override async Task ReanchorAsync(IAuditLog log, long through, AuditCheckpoint? anchor)
    {
        var redis = (RedisAuditLog)log;
        var entries = await redis.ReadAsync(null, 100_000, default);
        foreach (var entry in entries.Where(e => e.Sequence <= through))
        {
            await Db.ExecuteAsync("XDEL", redis.LogKey, entry.Position);
        }

        await DeleteCheckpointsBelowAsync(redis, through);
        var last = entries.Single(e => e.Sequence == through);
        await Db.HashSetAsync(redis.HeadKey, [new HashEntry("anchor_seq", last.Sequence), new HashEntry("anchor_hash", last.Hash)]);
        if (anchor is null)
        {
            await Db.HashDeleteAsync(redis.HeadKey, ["anchor_time", "anchor_kid", "anchor_sig", "anchor_interval"]);
        }
        else
        {
            await Db.HashSetAsync(redis.HeadKey,
            [
                new HashEntry("anchor_time", anchor.Time.ToUnixTimeMilliseconds()), new HashEntry("anchor_kid", anchor.KeyId),
                new HashEntry("anchor_sig", anchor.Signature), new HashEntry("anchor_interval", anchor.Interval),
            ]);
        }
    }

    private async Task DeleteCheckpointsBelowAsync(RedisAuditLog redis, long through)
    {
        foreach (var c in await redis.ReadCheckpointsAsync(default))
        {
            if (c.Sequence <= through)
            {
                var entries = (RedisResult[])(await Db.ExecuteAsync("XRANGE", redis.CheckpointsKey, "-", "+"))!;
                foreach (var entry in entries)
                {
                    var parts = (RedisResult[])entry!;
                    var fields = (RedisResult[])parts[1]!;
                    if ((string?)fields[Array.FindIndex(fields, f => (string?)f == "seq") + 1] == c.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    {
                        await Db.ExecuteAsync("XDEL", redis.CheckpointsKey, (string)parts[0]!);
                    }
                }
            }
        }
    }

    protected override Task<IAuditLog> RestartAsync(IAuditLog log)
    {
        var redis = (RedisAuditLog)log;
        var fresh = RedisAuditLog.Connect(_redis.ConnectionString + ",protocol=" + protocol, Signer, redis.Options, keyPrefix: redis.KeyPrefix);
        _logs.Add(fresh);
        return Task.FromResult<IAuditLog>(fresh);
    }

    [Test]
    public async Task TwoReplicas_AppendingConcurrently_ShareOneChain()
    {
        var options = new AuditLogOptions { CheckpointInterval = 20 };
        var chain = Guid.NewGuid().ToString("N")[..8];
        var (a, b) = (Connect(options, chain), Connect(options, chain));

        await Task.WhenAll(new[] { a, b }.Select(log => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                await log.AppendAsync(Event(AuditEventType.TokenMinted, i), default);
            }
        })));

        var records = await ReadAll(a, pageSize: 500);
        Assert.That(records.Select(r => r.Sequence), Is.EqualTo(Enumerable.Range(1, 200).Select(i => (long)i)));
        Assert.That((await Verify(b)).Intact, Is.True);
        Assert.That((await a.ReadCheckpointsAsync(default)).Select(c => c.Sequence), Is.EqualTo(Enumerable.Range(1, 10).Select(i => i * 20L)));
    }

    [Test]
    public async Task ConcurrentAppends_AreWrittenInBatches_EachCallerGetsItsOwnRecord_AndTheChainVerifiesRecordByRecord()
    {
        var log = Connect(new AuditLogOptions { CheckpointInterval = 7, MaxBatch = 64 }, Guid.NewGuid().ToString("N")[..8]);
        var appended = await Task.WhenAll(Enumerable.Range(0, 500).Select(i => log.AppendAsync(Event(AuditEventType.TokenMinted, i), default)));

        // Each caller got the record that holds its own event, at its own position.
        Assert.That(appended.Select(r => r.Sequence).Order(), Is.EqualTo(Enumerable.Range(1, 500).Select(i => (long)i)));
        var stored = (await ReadAll(log, pageSize: 1000)).ToDictionary(r => r.Sequence);
        foreach (var record in appended)
        {
            Assert.That((stored[record.Sequence].Body, stored[record.Sequence].Position, stored[record.Sequence].Hash), Is.EqualTo((record.Body, record.Position, record.Hash)));
        }

        Assert.That(log.Batches.Records, Is.EqualTo(500));
        Assert.That(log.Batches.Batches, Is.LessThan(500), "500 appends at once went in fewer, larger batches");
        Assert.That(log.Batches.Largest, Is.InRange(2, 64));
        var verified = await Verify(log);
        Assert.That((verified.Intact, verified.LastSequence, verified.CheckpointsVerified), Is.EqualTo((true, 500L, 71)));
    }

    [Test]
    public async Task TwoReplicas_WithManyConcurrentAppendsEach_BothMakeProgress_AndShareOneVerifiableChain()
    {
        var options = new AuditLogOptions { CheckpointInterval = 10, MaxBatch = 32 };
        var chain = Guid.NewGuid().ToString("N")[..8];
        var (a, b) = (Connect(options, chain), Connect(options, chain));

        // Each replica has 32 callers in flight at once: each keeps writing batches, and neither starves the other.
        var writers = new[] { a, b }.SelectMany(log => Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 20; i++)
            {
                await log.AppendAsync(Event(AuditEventType.TokenMinted, (w * 100) + i), default);
            }
        })));
        await Task.WhenAll(writers);

        Assert.That((a.Batches.Records, b.Batches.Records), Is.EqualTo((640L, 640L)));
        var records = await ReadAll(a, pageSize: 2000);
        Assert.That(records.Select(r => r.Sequence), Is.EqualTo(Enumerable.Range(1, 1280).Select(i => (long)i)));
        Assert.That((await Verify(b)).Intact, Is.True);
    }

    [Test]
    public void MaxBatch_OutOfRange_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AuditLogOptions { MaxBatch = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new AuditLogOptions { MaxBatch = 5000 }.Validate());
    }

    [Test]
    public async Task AnAgeLimitedChain_DropsOldIntervalsOnlyWhenTheyComeOfAge_WithoutReadingOldRecordsOnEveryAppend()
    {
        var maxAge = TimeSpan.FromSeconds(2);
        var log = Connect(new AuditLogOptions { CheckpointInterval = 5, MaxAge = maxAge }, Guid.NewGuid().ToString("N")[..8]);
        var started = DateTimeOffset.UtcNow;
        for (var i = 0; i < 12; i++)
        {
            await log.AppendAsync(Event(AuditEventType.TokenMinted, i), default);
        }

        // Young records: the head records when to look next (when the oldest comes of age), nothing is dropped.
        // (Only asserted when the appends took less than MaxAge: on a busy machine the oldest may already be of age.)
        var trimAt = (long)await Db.HashGetAsync(log.HeadKey, "trim_at");
        if (DateTimeOffset.UtcNow - started < maxAge - TimeSpan.FromMilliseconds(200))
        {
            Assert.That(trimAt, Is.GreaterThan(started.ToUnixTimeMilliseconds()), "the next retention look is scheduled, not on every append");
            Assert.That((await log.GetStateAsync(default)).AnchorSequence, Is.Zero);
        }

        // Once they are older than MaxAge, appends drop the whole checkpoint intervals among them (1-5, then 6-10:
        // on a busy machine they may come of age at different appends).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await log.GetStateAsync(default)).AnchorSequence < 10 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            await log.AppendAsync(Event(AuditEventType.TokenMinted, 99), default);
            Assert.That((await log.GetStateAsync(default)).AnchorSequence % 5, Is.Zero, "retention drops whole checkpoint intervals");
        }

        var state = await log.GetStateAsync(default);
        Assert.That(state.AnchorSequence, Is.GreaterThanOrEqualTo(10));
        Assert.That(state.AnchorSequence % 5, Is.Zero, "retention drops whole checkpoint intervals");
        Assert.That((await Verify(log)).Intact, Is.True);
    }

    [Test]
    public async Task RedisDown_AppendFailsClosed_AndResumesTheChainAfterRestart()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        using var log = RedisAuditLog.Connect(redis.ConnectionString + ",protocol=" + protocol, Signer, new AuditLogOptions { CheckpointInterval = 2 });
        await log.AppendAsync(Event(AuditEventType.TokenMinted, 1), default);

        redis.Kill();
        Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(Event(AuditEventType.TokenMinted, 2), default));
        Assert.ThrowsAsync<AuditUnavailableException>(() => log.GetStateAsync(default));

        redis.Restart();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        AuditRecord? appended = null;
        while (appended is null)
        {
            try
            {
                appended = await log.AppendAsync(Event(AuditEventType.LeaseRevoked, 3), default);
            }
            catch (AuditUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }

        Assert.That(appended.Sequence, Is.EqualTo(2), "the failed append left no record");
        var result = await AuditVerifier.VerifyAsync(log, [Signer], null, default);
        Assert.That((result.Intact, result.LastSequence, result.CheckpointsVerified), Is.EqualTo((true, 2L, 1)));
    }
}
