using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

[TestFixture]
public sealed class InMemoryAuditLogContractTests : AuditLogContract
{
    protected override IAuditLog CreateLog(AuditLogOptions options) => new InMemoryAuditLog(Signer, options);

    protected override Task EditBodyAsync(IAuditLog log, long sequence, string body, bool recomputeHash, string? previousHash)
    {
        ((InMemoryAuditLog)log).TamperReplace(sequence, r =>
        {
            var previous = previousHash ?? r.PreviousHash;
            return r with { Body = body, PreviousHash = previous, Hash = recomputeHash ? AuditChain.Hash(sequence, previous, body) : r.Hash };
        });
        return Task.CompletedTask;
    }

    protected override Task DeleteAsync(IAuditLog log, long sequence)
    {
        ((InMemoryAuditLog)log).TamperDelete(sequence);
        return Task.CompletedTask;
    }

    protected override Task TruncateAsync(IAuditLog log, long keepThrough, bool rewriteHead)
    {
        ((InMemoryAuditLog)log).TamperTruncate(keepThrough, rewriteHead);
        return Task.CompletedTask;
    }

    protected override Task DeleteCheckpointsAsync(IAuditLog log, long after)
    {
        ((InMemoryAuditLog)log).TamperDeleteCheckpoints(after);
        return Task.CompletedTask;
    }

    protected override Task ReplaceCheckpointsAsync(IAuditLog log, IEnumerable<AuditCheckpoint> checkpoints)
    {
        ((InMemoryAuditLog)log).TamperAddCheckpoints(checkpoints);
        return Task.CompletedTask;
    }

    protected override Task ReanchorAsync(IAuditLog log, long through, AuditCheckpoint? anchor)
    {
        ((InMemoryAuditLog)log).TamperReanchor(through, anchor);
        return Task.CompletedTask;
    }

    protected override Task<IAuditLog> RestartAsync(IAuditLog log)
    {
        ((InMemoryAuditLog)log).ForgetWitness();
        return Task.FromResult(log);
    }

    [Test]
    public async Task RetentionByAge_DropsRecordsOlderThanMaxAge()
    {
        var time = new ManualTimeProvider(Now);
        var log = new InMemoryAuditLog(Signer, new AuditLogOptions { MaxAge = TimeSpan.FromHours(1) }, time);
        await AppendMany(log, 3);
        time.Advance(TimeSpan.FromMinutes(61));

        await log.AppendAsync(Event(AuditEventType.LeaseExpired, 4), default);

        Assert.That((await ReadAll(log)).Select(r => r.Sequence), Is.EqualTo(new long[] { 1, 2, 3, 4 }), "no checkpoint to anchor at yet: nothing is dropped");
        time.Advance(TimeSpan.FromMinutes(61));
        for (var i = 5; i <= 100; i++)
        {
            await log.AppendAsync(Event(AuditEventType.LeaseExpired, i), default);
        }

        time.Advance(TimeSpan.FromMinutes(61));
        await log.AppendAsync(Event(AuditEventType.LeaseExpired, 101), default);
        Assert.That((await ReadAll(log)).Select(r => r.Sequence), Is.EqualTo(new long[] { 101 }), "dropped through the checkpoint at 100");
        Assert.That((await Verify(log)).Intact, Is.True);
    }
}
