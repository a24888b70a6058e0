using System.Security.Cryptography;
using CredBroker.Core.Audit;
using CredBroker.Core.Tokens;

namespace CredBroker.Testing;

/// <summary>What an attacker with write access to the audit store can do, and where verification catches it.</summary>
public abstract partial class AuditLogContract
{
    [Test]
    public async Task EditedRecord_IsReportedAtItsSequence()
    {
        var log = CreateLog();
        await AppendMany(log, 20);
        var original = (await ReadAll(log))[6].Body;

        await EditBodyAsync(log, 7, original.Replace("because 7", "because nothing"), recomputeHash: false);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)7)));
        Assert.That(result.Problem, Does.Contain("edited"));
    }

    [Test]
    public async Task EditedRecordWithRecomputedHash_IsReportedAtItsSequence()
    {
        var log = CreateLog();
        await AppendMany(log, 20);
        var original = (await ReadAll(log))[11].Body;

        await EditBodyAsync(log, 12, original.Replace("agent-12", "agent-innocent"), recomputeHash: true);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)12)));
        Assert.That(result.Problem, Does.Contain("rewritten"));
    }

    [Test]
    public async Task DeletedRecord_IsReportedAtItsSequence()
    {
        var log = CreateLog();
        await AppendMany(log, 20);

        await DeleteAsync(log, 9);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)9)));
        Assert.That(result.Problem, Does.Contain("deleted"));
    }

    [Test]
    public async Task DeletedFirstRecord_IsReported()
    {
        var log = CreateLog();
        await AppendMany(log, 5);

        await DeleteAsync(log, 1);

        Assert.That((await Verify(log)).FirstBrokenSequence, Is.EqualTo(1));
    }

    [Test]
    public async Task TruncatedTail_IsReportedAtTheFirstMissingSequence()
    {
        var log = CreateLog();
        await AppendMany(log, 20);

        await TruncateAsync(log, keepThrough: 14, rewriteHead: false);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)15)));
        Assert.That(result.Problem, Does.Contain("truncated"));
    }

    [Test]
    public async Task TruncatedTailWithRewrittenHead_IsCaughtByTheSignedCheckpoint()
    {
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 25);

        await TruncateAsync(log, keepThrough: 17, rewriteHead: true);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)18)));
        Assert.That(result.Problem, Does.Contain("checkpoint covers sequence 20"));
    }

    [Test]
    public async Task ChainRewrittenFromARecordOn_IsCaughtByTheNextCheckpoint()
    {
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 20);
        var records = await ReadAll(log);

        // Recompute every hash from record 13 on, as an attacker without the signing key would.
        var previous = records[11].Hash;
        foreach (var record in records.Skip(12))
        {
            var body = record.Sequence == 13 ? record.Body.Replace("because 13", "because reasons") : record.Body;
            await EditBodyAsync(log, record.Sequence, body, recomputeHash: true, previousHash: previous);
            previous = AuditChain.Hash(record.Sequence, previous, body);
        }

        await TruncateAsync(log, keepThrough: 20, rewriteHead: true);
        var result = await Verify(log);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)20)));
        Assert.That(result.Problem, Does.Contain("signed checkpoint"));
    }

    [Test]
    public async Task CheckpointsSignedByAnotherKey_AreNotTrusted()
    {
        var log = CreateLog(checkpointInterval: 5);
        await AppendMany(log, 6);

        var result = await AuditVerifier.VerifyAsync(log, [new HmacAuditSigner(RandomNumberGenerator.GetBytes(32))], null, default);

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)5)));
        Assert.That(result.Problem, Does.Contain("not validly signed"));
    }

    [Test]
    public void SigningKeyCheckpoints_VerifyWithThePublicKeyOnly()
    {
        using var key = SigningKey.Generate();
        var checkpoint = AuditCheckpoint.Create(new SigningKeyAuditSigner(key), 10, AuditChain.GenesisHash, Now, 10);

        Assert.That(checkpoint.IsSignedBy(new SigningKeyAuditSigner(key)), Is.True);
        Assert.That((checkpoint with { Sequence = 11 }).IsSignedBy(new SigningKeyAuditSigner(key)), Is.False);
    }

    [Test]
    public async Task RewrittenTailWithItsCheckpointsDeleted_IsReportedAtTheMissingCheckpoint()
    {
        // The attack of issue 15 item 11: rewrite every record after checkpoint 20 (hashes recomputed, head moved)
        // and delete the checkpoint above it. Seen by a broker that remembers nothing (restarted).
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 35);
        await RewriteFromAsync(log, 23, "because 23", "because nothing happened");
        await DeleteCheckpointsAsync(log, after: 20);

        var result = await Verify(await RestartAsync(log));

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)30)));
        Assert.That(result.Problem, Does.Contain("signed checkpoint required at 30 is missing"));
    }

    [Test]
    public async Task MissingCheckpointBetweenTwoOthers_IsReportedAtItsSequence()
    {
        var log = CreateLog(checkpointInterval: 5);
        await AppendMany(log, 17);
        var kept = (await log.ReadCheckpointsAsync(default)).Where(c => c.Sequence != 10).ToList();
        await DeleteCheckpointsAsync(log, after: 5);
        await ReplaceCheckpointsAsync(log, kept.Where(c => c.Sequence > 5));

        var result = await Verify(await RestartAsync(log));

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)10)));
        Assert.That(result.Problem, Does.Contain("required at 10 is missing"));
    }

    [Test]
    public async Task ReanchoredWithoutASignature_IsReported()
    {
        // Truncate the head of the chain and re-anchor where the broker signed nothing.
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 25);

        await ReanchorAsync(log, through: 12, anchor: null);
        var result = await Verify(await RestartAsync(log));

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)13)));
        Assert.That(result.Problem, Does.Contain("re-anchored"));
    }

    [Test]
    public async Task ReanchoredWithAForgedOrMisplacedAnchor_IsReported()
    {
        var (forgedLog, misplacedLog) = (CreateLog(checkpointInterval: 10), CreateLog(checkpointInterval: 10));
        await AppendMany(forgedLog, 25);
        await AppendMany(misplacedLog, 25);
        var records = await ReadAll(forgedLog);
        var forged = AuditCheckpoint.Create(new HmacAuditSigner(RandomNumberGenerator.GetBytes(32)), 12, records[11].Hash, Now, 10) with { KeyId = Signer.KeyId };
        var checkpoint10 = (await misplacedLog.ReadCheckpointsAsync(default)).Single(c => c.Sequence == 10);

        await ReanchorAsync(forgedLog, through: 12, anchor: forged);
        await ReanchorAsync(misplacedLog, through: 12, anchor: checkpoint10);
        var withForged = await Verify(await RestartAsync(forgedLog));
        var withMisplaced = await Verify(await RestartAsync(misplacedLog));

        Assert.That((withForged.Intact, withForged.FirstBrokenSequence), Is.EqualTo((false, (long?)13)));
        Assert.That((withMisplaced.Intact, withMisplaced.FirstBrokenSequence), Is.EqualTo((false, (long?)13)));
        Assert.That(withMisplaced.Problem, Does.Contain("without a validly signed anchor"));
    }

    [Test]
    public async Task RolledBackToAnEarlierCheckpoint_IsReportedByABrokerThatAppendedPastIt()
    {
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 35);

        await TruncateAsync(log, keepThrough: 20, rewriteHead: true);
        await DeleteCheckpointsAsync(log, after: 20);
        var result = await Verify(log);
        var restarted = await Verify(await RestartAsync(log));

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, (long?)21)));
        Assert.That(result.Problem, Does.Contain("rolled back"));
        // The documented limit: a rollback to a signed checkpoint is invisible to a broker that never saw the later records.
        Assert.That(restarted.Intact, Is.True);
    }

    [Test]
    public async Task NewestRecordsBelowTheInterval_DroppedUnnoticedOnlyByABrokerThatNeverSawThem()
    {
        var log = CreateLog(checkpointInterval: 10);
        await AppendMany(log, 27);

        await TruncateAsync(log, keepThrough: 21, rewriteHead: true);

        Assert.That((await Verify(log)).FirstBrokenSequence, Is.EqualTo(22), "the appending broker notices");
        Assert.That((await Verify(await RestartAsync(log))).Intact, Is.True, "the documented limit: fewer than N newest records after the newest checkpoint");
    }

    /// <summary>Rewrites every record from <paramref name="from"/> on with recomputed hashes (one body changed) and moves the head, as an attacker without the signing key would.</summary>
    protected async Task RewriteFromAsync(IAuditLog log, long from, string oldText, string newText)
    {
        var records = await ReadAll(log);
        var previous = records.Single(r => r.Sequence == from - 1).Hash;
        foreach (var record in records.Where(r => r.Sequence >= from))
        {
            var body = record.Sequence == from ? record.Body.Replace(oldText, newText, StringComparison.Ordinal) : record.Body;
            await EditBodyAsync(log, record.Sequence, body, recomputeHash: true, previousHash: previous);
            previous = AuditChain.Hash(record.Sequence, previous, body);
        }

        await TruncateAsync(log, keepThrough: records[^1].Sequence, rewriteHead: true);
    }

    /// <summary>Appends the given (validly signed) checkpoints back to the store.</summary>
    protected abstract Task ReplaceCheckpointsAsync(IAuditLog log, IEnumerable<AuditCheckpoint> checkpoints);

    /// <summary>Replaces a record's body (and optionally its stored previous hash and recomputed hash), keeping its place in the store.</summary>
    protected abstract Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash, string? previousHash);

    protected Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash) =>
        EditBodyAsync(log, sequence, body, recomputeHash, previousHash: null);
}
