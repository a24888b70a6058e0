using System.Collections.Concurrent;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;

namespace CredBroker.Core.Tests;

/// <summary>
/// A shard the sweeper could not finish (its expiry's audit record failed: the audit log was away, as around a Sentinel
/// failover) is retried at the shard's own backoff, not after the sweeper's idle wait, which sweeps that find nothing
/// (every sweep through an outage) have grown to its maximum (issue 17: expiries recorded 1.4 s after a failover's end).
/// </summary>
[TestFixture]
public sealed class LeaseSweeperOutageRetryTests
{
    [Test]
    public async Task AShardWhoseAuditRecordFailed_IsRetriedAtItsBackoff_NotAfterTheIdleWait()
    {
        var store = new InMemoryLeaseStore();
        var now = DateTimeOffset.UtcNow;
        var agent = "agent-" + Guid.NewGuid().ToString("N")[..8];
        var task = "task-" + Guid.NewGuid().ToString("N");
        var lease = new Lease
        {
            LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "o@example.com", Purpose = "p", Audience = "api",
            Scopes = ["a:read"], State = LeaseState.Active, CreatedAt = now.AddMinutes(-2), Deadline = now.AddSeconds(-1), MaxDeadline = now.AddHours(1),
        };
        await store.OpenAsync(lease, LeaseQuota.Unlimited, default);
        var audit = new AwayOnceAudit();
        // An idle wait of an hour: only the shard's backoff (at most 0.4 s) can bring the retry within the bound below.
        var sweeper = new LeaseSweeper(store, TimeProvider.System, audit: audit);
        using var stop = new CancellationTokenSource();
        var errors = new ConcurrentQueue<Exception>();
        var running = sweeper.RunAsync(TimeSpan.FromHours(1), _ => { }, errors.Enqueue, stop.Token);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (audit.Recorded.IsEmpty && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await stop.CancelAsync();
        await running;
        Assert.That(audit.Failures, Is.EqualTo(1), "the first record failed (the audit log was away)");
        Assert.That(audit.Recorded.Select(e => e.LeaseId), Is.EqualTo(new[] { lease.LeaseId }), "recorded at the shard's retry, not an hour later");
        Assert.That(errors, Is.Empty, "the other shards were swept: no sweep failed as a whole");
    }

    /// <summary>Unavailable at the first event, then records.</summary>
    private sealed class AwayOnceAudit : IAuditEvents
    {
        private int _calls;

        public int Failures => Math.Min(Volatile.Read(ref _calls), 1);

        public ConcurrentQueue<AuditEvent> Recorded { get; } = new();

        public Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _calls) == 1)
            {
                throw new AuditUnavailableException("the audit log is away (test)");
            }

            Recorded.Enqueue(auditEvent);
            return Task.FromResult(new AuditRecord(Recorded.Count, "", "", "", ""));
        }
    }
}
