using System.Security.Cryptography;
using CredBroker.Core.Audit;

namespace CredBroker.Testing;

/// <summary>
/// The audit log contract, written once and run against every store (in-memory and Redis): the
/// chain, checkpoints, retention, and that verification finds tampering at the right sequence.
/// Tampering is store-specific (what an attacker with write access to the store can do), so each
/// fixture supplies it. Tamper tests are in AuditLogContract.Tampering.cs.
/// </summary>
public abstract partial class AuditLogContract
{
    protected static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    protected IAuditSigner Signer { get; } = new HmacAuditSigner(RandomNumberGenerator.GetBytes(32));

    /// <summary>A fresh, empty log (the fixture disposes what it creates).</summary>
    protected abstract IAuditLog CreateLog(AuditLogOptions options);

    protected abstract Task DeleteAsync(IAuditLog log, long sequence);

    protected abstract Task TruncateAsync(IAuditLog log, long keepThrough, bool rewriteHead);

    /// <summary>Deletes the signed checkpoints past <paramref name="after"/>.</summary>
    protected abstract Task DeleteCheckpointsAsync(IAuditLog log, long after);

    /// <summary>Drops the records (and checkpoints) through <paramref name="through"/> and anchors the chain there with <paramref name="anchor"/> (null = no anchor signature).</summary>
    protected abstract Task ReanchorAsync(IAuditLog log, long through, AuditCheckpoint? anchor);

    /// <summary>The same store as a freshly started broker process sees it (nothing remembered in memory).</summary>
    protected abstract Task<IAuditLog> RestartAsync(IAuditLog log);

    protected IAuditLog CreateLog(int checkpointInterval = 10, long maxRecords = 0) =>
        CreateLog(new AuditLogOptions { CheckpointInterval = checkpointInterval, MaxRecords = maxRecords });

    protected static AuditEvent Event(AuditEventType type, int n = 0) => new()
    {
        Type = type,
        Time = Now.AddMilliseconds(n),
        AgentId = "agent-" + n,
        Owner = "owner@example.com",
        TaskId = "task-" + n,
        LeaseId = "l00_" + n,
        Audience = "api",
        ScopesRequested = ["b:write", "a:read"],
        ScopesGranted = ["a:read"],
        RuleIds = ["rule.one", "rule.two"],
        Caller = "agent-" + n + " (workload-jwt)",
        Operator = "alice@example.com",
        Reason = "because " + n,
        Details = new Dictionary<string, string> { ["jti"] = "t" + n, ["exp"] = "2030-01-01T00:00:00Z" },
    };

    protected static async Task AppendMany(IAuditLog log, int count)
    {
        for (var i = 1; i <= count; i++)
        {
            await log.AppendAsync(Event(AuditEventType.TokenMinted, i), default);
        }
    }

    protected static async Task<List<AuditRecord>> ReadAll(IAuditLog log, int pageSize = 7)
    {
        var all = new List<AuditRecord>();
        string? position = null;
        while (true)
        {
            var page = await log.ReadAsync(position, pageSize, default);
            all.AddRange(page);
            if (page.Count < pageSize)
            {
                return all;
            }

            position = page[^1].Position;
        }
    }

    protected Task<AuditVerification> Verify(IAuditLog log) => AuditVerifier.VerifyAsync(log, [Signer], null, default);

    [Test]
    public async Task EveryEventType_IsStoredWithAllItsFields()
    {
        var log = CreateLog();
        var types = Enum.GetValues<AuditEventType>();
        for (var i = 0; i < types.Length; i++)
        {
            await log.AppendAsync(Event(types[i], i), default);
        }

        var read = await ReadAll(log);

        Assert.That(read.Select(r => r.Sequence), Is.EqualTo(Enumerable.Range(1, types.Length).Select(i => (long)i)));
        for (var i = 0; i < types.Length; i++)
        {
            var stored = read[i].TryEvent()!;
            var expected = Event(types[i], i);
            Assert.That(stored, Is.Not.Null);
            Assert.That((stored.Type, stored.Time, stored.AgentId, stored.Owner, stored.TaskId, stored.LeaseId, stored.Audience, stored.Caller, stored.Operator, stored.Reason),
                Is.EqualTo((expected.Type, expected.Time, expected.AgentId, expected.Owner, expected.TaskId, expected.LeaseId, expected.Audience, expected.Caller, expected.Operator, expected.Reason)));
            Assert.That(stored.ScopesRequested, Is.EqualTo(new[] { "a:read", "b:write" }), "scopes are stored sorted");
            Assert.That(stored.ScopesGranted, Is.EqualTo(expected.ScopesGranted));
            Assert.That(stored.RuleIds, Is.EqualTo(expected.RuleIds), "rule ids keep their order (the order rules fired)");
            Assert.That(stored.Details, Is.EquivalentTo(expected.Details));
        }
    }

    [Test]
    public async Task Append_ChainsEachRecordToThePreviousOne()
    {
        var log = CreateLog();
        var first = await log.AppendAsync(Event(AuditEventType.TokenMinted, 1), default);
        var second = await log.AppendAsync(Event(AuditEventType.LeaseRevoked, 2), default);

        Assert.That(first.Sequence, Is.EqualTo(1));
        Assert.That(first.PreviousHash, Is.EqualTo(AuditChain.GenesisHash));
        Assert.That(second.PreviousHash, Is.EqualTo(first.Hash));
        Assert.That(second.Hash, Is.EqualTo(AuditChain.Hash(2, first.Hash, second.Body)));
        var state = await log.GetStateAsync(default);
        Assert.That((state.HeadSequence, state.HeadHash), Is.EqualTo((2L, second.Hash)));
    }

    [Test]
    public async Task IntactChain_VerifiesWithItsSignedCheckpoints()
    {
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 35);

        var result = await Verify(log);
        var checkpoints = await log.ReadCheckpointsAsync(default);

        Assert.That(result.Intact, Is.True, result.Problem);
        Assert.That((result.RecordsChecked, result.FirstSequence, result.LastSequence, result.CheckpointsVerified), Is.EqualTo((35L, 1L, 35L, 3)));
        Assert.That(checkpoints.Select(c => c.Sequence), Is.EqualTo(new long[] { 10, 20, 30 }));
        Assert.That(checkpoints.All(c => c.IsSignedBy(Signer)), Is.True);
    }

    [Test]
    public async Task EmptyLog_IsIntact()
    {
        var result = await Verify(CreateLog());

        Assert.That((result.Intact, result.RecordsChecked), Is.EqualTo((true, 0L)));
    }

    [Test]
    public async Task ConcurrentAppends_FormOneChainWithoutGapsOrForks()
    {
        var log = CreateLog(checkpointInterval: 25);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                await log.AppendAsync(Event(AuditEventType.TokenMinted, (w * 1000) + i), default);
            }
        })));

        var records = await ReadAll(log, pageSize: 64);
        Assert.That(records.Select(r => r.Sequence), Is.EqualTo(Enumerable.Range(1, 200).Select(i => (long)i)));
        Assert.That((await Verify(log)).Intact, Is.True);
    }

    [Test]
    public async Task Retention_DropsTheOldestRecords_AndTheRestStillVerifies()
    {
        var log = CreateLog(checkpointInterval: 5, maxRecords: 12);
        await AppendMany(log, 30);

        var records = await ReadAll(log);
        var state = await log.GetStateAsync(default);
        var result = await Verify(log);

        // Whole checkpoint intervals are dropped: the chain is anchored at the newest dropped checkpoint (15), signed.
        Assert.That(records.Select(r => r.Sequence), Is.EqualTo(Enumerable.Range(16, 15).Select(i => (long)i)));
        Assert.That((state.AnchorSequence, state.HeadSequence), Is.EqualTo((15L, 30L)));
        Assert.That(records[0].PreviousHash, Is.EqualTo(state.AnchorHash));
        Assert.That((state.Anchor?.Sequence, state.Anchor?.Hash, state.Anchor?.IsSignedBy(Signer)), Is.EqualTo(((long?)15, state.AnchorHash, (bool?)true)));
        Assert.That((await log.ReadCheckpointsAsync(default)).Select(c => c.Sequence), Is.EqualTo(new long[] { 20, 25, 30 }));
        Assert.That(result.Intact, Is.True, result.Problem);
        Assert.That((result.FirstSequence, result.LastSequence, result.RecordsChecked), Is.EqualTo((16L, 30L, 15L)));
        var restarted = await Verify(await RestartAsync(log));
        Assert.That(restarted.Intact, Is.True, "a restarted broker verifies the signed anchor: " + restarted.Problem);
    }

    [Test]
    public async Task Verification_ReportsProgressPerPage()
    {
        var log = CreateLog();
        await AppendMany(log, AuditVerifier.PageSize + 5);
        var reports = new List<long>();

        await AuditVerifier.VerifyAsync(log, [Signer], new SynchronousProgress(reports.Add), default);

        Assert.That(reports, Is.EqualTo(new long[] { AuditVerifier.PageSize, AuditVerifier.PageSize + 5 }));
    }

    private sealed class SynchronousProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
