using CredBroker.Core.Audit;
using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>
/// Claims of expiries last until confirmed: an expiry claimed by a sweeper that never recorded it (it died, was
/// paused, or the audit log was away) is claimed again after <see cref="ExpiredLease.ClaimTimeout"/>. Found by the
/// chaos run (approvals, Redis Cluster): a master kill took the audit log away after the claim, and the expiry of
/// the claimed leases was never recorded.
/// </summary>
public abstract partial class LeaseStoreContract
{
    [Test]
    public async Task ClaimExpired_AnUnconfirmedClaim_IsClaimedAgainAfterTheTimeout_AConfirmedOneNever()
    {
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        await Open(lease);
        var at = Now.AddSeconds(2);
        var timeout = ExpiredLease.ClaimTimeout;
        try
        {
            var first = await Store.ClaimExpiredAsync(shard, at, 1000, default);
            var withinTimeout = await Store.ClaimExpiredAsync(shard, at + timeout - TimeSpan.FromMilliseconds(1), 1000, default);
            var retaken = await Store.ClaimExpiredAsync(shard, at + timeout, 1000, default);
            await Store.ConfirmExpiredAsync(shard, retaken, default);
            var afterConfirm = await Store.ClaimExpiredAsync(shard, at + (3 * timeout), 1000, default);

            Assert.That(first, Does.Contain(new ExpiredLease(lease.LeaseId, lease.Deadline)));
            Assert.That(withinTimeout.Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId), "held by its claimer until the timeout");
            Assert.That(retaken, Does.Contain(new ExpiredLease(lease.LeaseId, lease.Deadline)), "unconfirmed: claimed again, with its deadline");
            Assert.That(afterConfirm.Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId), "confirmed: never again");
            Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired));
        }
        finally
        {
            await ClaimAll(at + (10 * timeout));
        }
    }

    [Test]
    public async Task Sweeper_AnExpiryWhoseAuditRecordFailed_IsRecordedByALaterSweep_Once()
    {
        var (lease, time, audit, sweeper) = await FirstSweepWithTheAuditAwayAsync();
        try
        {

            // Another replica (or this one, later) sweeps once the claim timed out: the expiry is recorded.
            time.Advance(ExpiredLease.ClaimTimeout + TimeSpan.FromSeconds(1));
            await new LeaseSweeper(Store, time, audit: audit).SweepOnceAsync(default);
            Assert.That(audit.Recorded(lease.LeaseId), Is.EqualTo(1));

            time.Advance(ExpiredLease.ClaimTimeout * 3);
            await sweeper.SweepOnceAsync(default);
            Assert.That(audit.Recorded(lease.LeaseId), Is.EqualTo(1), "recorded and confirmed: never again");
        }
        finally
        {
            await ClaimAll(time.GetUtcNow() + (10 * ExpiredLease.ClaimTimeout));
        }
    }

    [Test]
    public async Task Sweeper_AnExpiryWhoseAuditRecordFailed_IsRecordedByTheSameReplicasNextSweep_WithoutWaitingForTheClaimTimeout()
    {
        var (lease, time, audit, sweeper) = await FirstSweepWithTheAuditAwayAsync();
        try
        {

            // The audit log is back before the claim timeout: the shard's next sweep (after its backoff, at most 1 s)
            // records the expiry it holds, about a second after the recovery rather than after the claim timeout.
            time.Advance(TimeSpan.FromSeconds(1));
            await sweeper.SweepOnceAsync(default);
            Assert.That(audit.Recorded(lease.LeaseId), Is.EqualTo(1));

            time.Advance(ExpiredLease.ClaimTimeout * 3);
            await new LeaseSweeper(Store, time, audit: audit).SweepOnceAsync(default);
            Assert.That(audit.Recorded(lease.LeaseId), Is.EqualTo(1), "recorded and confirmed: no other sweeper takes it again");
        }
        finally
        {
            await ClaimAll(time.GetUtcNow() + (10 * ExpiredLease.ClaimTimeout));
        }
    }

    [TestCase("complete")]
    [TestCase("revoke")]
    [TestCase("quarantine")]
    public async Task AnEndingPastTheDeadline_BeforeAnySweep_EndsItExpired_AndTheSweeperStillClaimsIt(string ending)
    {
        // Found by the chaos run: CompleteTask or RevokeLease a moment after the deadline (before a sweep) ended the lease
        // as expired and took it off the deadline index, so no sweeper ever claimed it and its expiry was never recorded.
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        await Open(lease);
        var at = Now.AddSeconds(2);
        switch (ending)
        {
            case "complete":
                Assert.That((await Complete(lease.LeaseId, at)).Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
                break;
            case "revoke":
                Assert.That((await Revoke(lease.LeaseId, at)).Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
                break;
            default:
                Assert.That(await Store.QuarantineAgentAsync(agent, "test", "ops@example.com", at, default), Is.Zero);
                break;
        }

        Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired));
        var claimed = await Claim(shard, at, 1000);
        var again = await Claim(shard, at + (3 * ExpiredLease.ClaimTimeout), 1000);

        Assert.That(claimed, Does.Contain(new ExpiredLease(lease.LeaseId, lease.Deadline)), "a sweeper records the expiry");
        Assert.That(again.Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId));
        Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired));
    }

    /// <summary>An audit log that is unavailable for the first record about one lease, and counts what it records.</summary>
    /// <summary>A lease past its deadline, and a sweep whose audit record of it fails (the audit log is away): its claim stays unconfirmed.</summary>
    private async Task<(Lease Lease, ManualTimeProvider Time, FlakyAudit Audit, LeaseSweeper Sweeper)> FirstSweepWithTheAuditAwayAsync()
    {
        var agent = NewAgent();
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        await Open(lease);
        var time = new ManualTimeProvider(Now.AddSeconds(2));
        var audit = new FlakyAudit(lease.LeaseId);
        var sweeper = new LeaseSweeper(Store, time, audit: audit);
        var failed = await sweeper.SweepOnceAsync(default);
        Assert.That(failed.UnreachableShards, Does.Contain(LeaseIds.ShardOf(agent)), "the audit log was away: the shard's sweep failed");
        Assert.That(audit.Recorded(lease.LeaseId), Is.Zero);
        return (lease, time, audit, sweeper);
    }

    private sealed class FlakyAudit(string failOnce) : IAuditEvents
    {
        private readonly List<AuditEvent> _recorded = [];
        private bool _failed;

        public int Recorded(string leaseId)
        {
            lock (_recorded)
            {
                return _recorded.Count(e => e.LeaseId == leaseId && e.Type == AuditEventType.LeaseExpired);
            }
        }

        public Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            lock (_recorded)
            {
                if (auditEvent.LeaseId == failOnce && !_failed)
                {
                    _failed = true;
                    throw new AuditUnavailableException("audit log unreachable (test)");
                }

                _recorded.Add(auditEvent);
                return Task.FromResult(new AuditRecord(_recorded.Count, "", "", "", ""));
            }
        }
    }
}
