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
        var checkpoint = AuditCheckpoint.Create(new SigningKeyAuditSigner(key), 10, AuditChain.GenesisHash, Now);

        Assert.That(checkpoint.IsSignedBy(new SigningKeyAuditSigner(key)), Is.True);
        Assert.That((checkpoint with { Sequence = 11 }).IsSignedBy(new SigningKeyAuditSigner(key)), Is.False);
    }

    /// <summary>Replaces a record's body (and optionally its stored previous hash and recomputed hash), keeping its place in the store.</summary>
    protected abstract Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash, string? previousHash);

    protected Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash) =>
        EditBodyAsync(log, sequence, body, recomputeHash, previousHash: null);
}
