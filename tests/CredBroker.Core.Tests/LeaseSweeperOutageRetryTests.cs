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

    /// <summary>
    /// The expiries one sweep claimed are recorded together, so the audit log's group commit writes them in one batch
    /// (one WAIT for all): after a Sentinel failover the first WAIT took 0.5 s and, recorded one after another, every
    /// expiry behind it waited for it.
    /// </summary>
    [Test]
    public async Task TheExpiriesOfOneSweep_AreRecordedTogether()
    {
        var store = new InMemoryLeaseStore();
        var agent = "agent-" + Guid.NewGuid().ToString("N")[..8];
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await OpenPastDeadlineAsync(store, agent, DateTimeOffset.UtcNow));
        }

        var audit = new GatheringAudit(expected: 3);
        await new LeaseSweeper(store, TimeProvider.System, audit: audit).SweepOnceAsync(default);

        Assert.That(audit.MostAtOnce, Is.EqualTo(3), "all three were being recorded at once");
        Assert.That(audit.Recorded.Select(e => e.LeaseId), Is.EquivalentTo(ids));
    }

    /// <summary>
    /// One record of a sweep's batch fails: the others are confirmed (never recorded again), the failed one is kept and
    /// recorded later: each expiry is recorded exactly once here.
    /// </summary>
    [Test]
    public async Task OneRecordOfABatchFails_TheOthersAreConfirmed_AndTheFailedOneIsRecordedLater()
    {
        var store = new InMemoryLeaseStore();
        var time = new CredBroker.Testing.ManualTimeProvider(DateTimeOffset.UtcNow);
        var agent = "agent-" + Guid.NewGuid().ToString("N")[..8];
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await OpenPastDeadlineAsync(store, agent, time.GetUtcNow()));
        }

        var audit = new FailsOnceForAudit(ids[1]);
        var sweeper = new LeaseSweeper(store, time, audit: audit);
        var first = await sweeper.SweepOnceAsync(default);
        Assert.That(first.UnreachableShards, Is.EqualTo(new[] { LeaseIds.ShardOf(agent) }));
        Assert.That(audit.Recorded.Select(e => e.LeaseId), Is.EquivalentTo(new[] { ids[0], ids[2] }));

        // Past the claim timeout: the kept claim is dropped and the store hands the unconfirmed lease out again.
        time.Advance(ExpiredLease.ClaimTimeout + TimeSpan.FromSeconds(1));
        await sweeper.SweepOnceAsync(default);
        Assert.That(audit.Recorded.Select(e => e.LeaseId), Is.EquivalentTo(ids), "each expiry recorded once");
    }

    private static async Task<string> OpenPastDeadlineAsync(InMemoryLeaseStore store, string agent, DateTimeOffset now)
    {
        var task = "task-" + Guid.NewGuid().ToString("N");
        var lease = new Lease
        {
            LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "o@example.com", Purpose = "p", Audience = "api",
            Scopes = ["a:read"], State = LeaseState.Active, CreatedAt = now.AddMinutes(-2), Deadline = now.AddSeconds(-1), MaxDeadline = now.AddHours(1),
        };
        await store.OpenAsync(lease, LeaseQuota.Unlimited, default);
        return lease.LeaseId;
    }

    /// <summary>Holds each record until <c>expected</c> are in flight (or 30 s passed), and counts the most at once.</summary>
    private sealed class GatheringAudit(int expected) : IAuditEvents
    {
        private readonly TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _inFlight;
        private int _most;

        public int MostAtOnce => Volatile.Read(ref _most);

        public ConcurrentQueue<AuditEvent> Recorded { get; } = new();

        public async Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _inFlight);
            InterlockedMax(ref _most, now);
            if (now >= expected)
            {
                _all.TrySetResult();
            }

            await Task.WhenAny(_all.Task, Task.Delay(TimeSpan.FromSeconds(30), cancellationToken));
            Interlocked.Decrement(ref _inFlight);
            Recorded.Enqueue(auditEvent);
            return new AuditRecord(Recorded.Count, "", "", "", "");
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }
    }

    /// <summary>Unavailable for one lease's first record; records everything else.</summary>
    private sealed class FailsOnceForAudit(string leaseId) : IAuditEvents
    {
        private int _failed;

        public ConcurrentQueue<AuditEvent> Recorded { get; } = new();

        public Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            if (auditEvent.LeaseId == leaseId && Interlocked.Exchange(ref _failed, 1) == 0)
            {
                throw new AuditUnavailableException("the audit log is away (test)");
            }

            Recorded.Enqueue(auditEvent);
            return Task.FromResult(new AuditRecord(Recorded.Count, "", "", "", ""));
        }
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
