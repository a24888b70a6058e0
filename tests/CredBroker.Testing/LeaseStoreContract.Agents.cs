using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>Per-agent controls: quarantine and quotas.</summary>
public abstract partial class LeaseStoreContract
{
    [Test]
    public async Task Quarantine_RevokesOpenLeases_AppendsOneAgentEvent_BlocksOpens_AndReleaseUnblocks()
    {
        var agent = NewAgent();
        var open = Enumerable.Range(0, 3).Select(_ => NewLease(agent)).ToList();
        var completed = NewLease(agent);
        var other = NewLease(NewAgent());
        foreach (var l in open.Append(completed).Append(other))
        {
            await Open(l);
        }

        await Complete(completed.LeaseId, Now);
        var tail = await Store.CurrentRevocationCursorAsync(default);
        var at = Now.AddSeconds(5);

        var revoked = await Store.QuarantineAgentAsync(agent, "exfiltration suspected", "secops@example.com", at, default);
        var status = await Store.GetAgentStatusAsync(agent, default);
        var blocked = NewLease(agent, at: at.AddSeconds(1));
        var refused = await Open(blocked);
        var refusedReopen = await Open(NewLease(agent, open[0].TaskId, at: at.AddSeconds(1)));

        Assert.That(revoked, Is.EqualTo(3));
        Assert.That(status, Is.EqualTo(at));
        foreach (var l in open)
        {
            var read = await Store.GetAsync(l.LeaseId, default);
            Assert.That((read!.State, read.EndedAt, read.Generation), Is.EqualTo((LeaseState.Revoked, (DateTimeOffset?)at, 1L)));
        }

        Assert.That((await Store.GetAsync(completed.LeaseId, default))!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That((await Store.GetAsync(other.LeaseId, default))!.State, Is.EqualTo(LeaseState.Active));
        Assert.That((refused.Refusal, refused.Lease, refused.Created), Is.EqualTo((OpenRefusal.Quarantined, (Lease?)null, false)));
        Assert.That(refusedReopen.Refusal, Is.EqualTo(OpenRefusal.Quarantined));
        Assert.That(await Store.GetAsync(blocked.LeaseId, default), Is.Null, "a refused open writes nothing");
        var events = (await ReadAll(tail)).Events.Where(e => e.AgentId == agent).ToList();
        Assert.That(events, Has.Count.EqualTo(1));
        Assert.That(events[0], Is.EqualTo(new RevocationEvent(LeaseIds.ShardOf(agent), events[0].Position, RevocationKind.Agent, null, agent, null,
            RevocationCause.Quarantined, "exfiltration suspected", "secops@example.com", at, at)));

        Assert.That(await Store.ReleaseAgentAsync(agent, "secops@example.com", at.AddMinutes(1), default), Is.True);
        Assert.That(await Store.GetAgentStatusAsync(agent, default), Is.Null);
        var reopened = await Open(NewLease(agent, at: at.AddMinutes(1)));
        Assert.That(reopened.Created, Is.True);
        Assert.That(await Store.ReleaseAgentAsync(agent, "secops@example.com", at.AddMinutes(2), default), Is.False);
        Assert.That((await ReadAll(tail)).Events.Count(e => e.AgentId == agent), Is.EqualTo(1), "release appends nothing");
    }

    [Test]
    public async Task QuarantineRacingOpens_LeavesNoActiveLease()
    {
        var agent = NewAgent();
        var at = Now.AddSeconds(1);
        var opens = Enumerable.Range(0, 80).Select(_ => Task.Run(() => Open(NewLease(agent)))).ToList();
        var quarantine = Task.Run(() => Store.QuarantineAgentAsync(agent, "race", "ops", at, default));
        await Task.WhenAll(opens.Cast<Task>().Append(quarantine));

        var created = opens.Select(o => o.Result).Where(r => r.Created).Select(r => r.Lease!.LeaseId).ToList();
        Assert.That(opens.Select(o => o.Result.Refusal), Is.All.AnyOf(OpenRefusal.None, OpenRefusal.Quarantined));
        Assert.That(quarantine.Result, Is.EqualTo(created.Count), "every lease opened before the quarantine is revoked by it");
        foreach (var id in created)
        {
            Assert.That((await Store.GetAsync(id, default))!.State, Is.EqualTo(LeaseState.Revoked));
        }
    }

    [Test]
    public async Task Quarantine_Twice_KeepsTheFirstTimeAndAppendsOnce()
    {
        var agent = NewAgent();
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(2));
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var first = await Store.QuarantineAgentAsync(agent, "one", "ops", Now.AddSeconds(3), default);
        var second = await Store.QuarantineAgentAsync(agent, "two", "ops", Now.AddSeconds(4), default);

        Assert.That((first, second), Is.EqualTo((0, 0)), "a lease past its deadline is expired, not counted as revoked");
        Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired));
        Assert.That(await Store.GetAgentStatusAsync(agent, default), Is.EqualTo(Now.AddSeconds(3)));
        Assert.That((await ReadAll(tail)).Events.Where(e => e.AgentId == agent).Select(e => e.Reason), Is.EqualTo(new[] { "one" }));
    }

    [Test]
    public async Task Quota_Concurrency_RefusesAtTheLimit_ButReopensAnExistingTask()
    {
        var agent = NewAgent();
        var quota = new LeaseQuota(MaxConcurrent: 2);
        var a = NewLease(agent, ttl: TimeSpan.FromMinutes(5));
        var b = NewLease(agent, ttl: TimeSpan.FromMinutes(3));
        await Open(a, quota);
        await Open(b, quota);

        var third = NewLease(agent, at: Now.AddSeconds(1));
        var refused = await Open(third, quota);
        var reopen = await Open(NewLease(agent, a.TaskId, at: Now.AddSeconds(1)), quota);
        await Complete(b.LeaseId, Now.AddSeconds(2));
        var afterComplete = await Open(NewLease(agent, at: Now.AddSeconds(2)), quota);
        var pastDeadlineDoesNotCount = await Open(NewLease(agent, at: Now.AddMinutes(6)), quota);

        Assert.That((refused.Refusal, refused.RetryAfter), Is.EqualTo((OpenRefusal.ConcurrencyLimit, (TimeSpan?)(b.Deadline - Now.AddSeconds(1)))));
        Assert.That(await Store.GetAsync(third.LeaseId, default), Is.Null);
        Assert.That((reopen.Created, reopen.Refusal, reopen.Lease!.LeaseId), Is.EqualTo((false, OpenRefusal.None, a.LeaseId)));
        Assert.That(afterComplete.Created, Is.True);
        Assert.That(pastDeadlineDoesNotCount.Created, Is.True);
    }

    [Test]
    public async Task Quota_Rate_RefusesWithinTheRollingWindow_ButReopensAnExistingTask()
    {
        var agent = NewAgent();
        var quota = new LeaseQuota(MaxOpensPerWindow: 3, Window: TimeSpan.FromSeconds(60));
        var first = NewLease(agent);
        await Open(first, quota);
        await Open(NewLease(agent, at: Now.AddSeconds(10)), quota);
        await Complete(first.LeaseId, Now.AddSeconds(15));
        await Open(NewLease(agent, at: Now.AddSeconds(20)), quota);

        var fourth = NewLease(agent, at: Now.AddSeconds(30));
        var refused = await Open(fourth, quota);
        var reopen = await Open(NewLease(agent, first.TaskId, at: Now.AddSeconds(30)), quota);
        var stillRefused = await Open(NewLease(agent, at: Now.AddSeconds(59)), quota);
        var windowMoved = await Open(NewLease(agent, at: Now.AddSeconds(60)), quota);
        var nextRefused = await Open(NewLease(agent, at: Now.AddSeconds(61)), quota);

        Assert.That((refused.Refusal, refused.RetryAfter), Is.EqualTo((OpenRefusal.RateLimit, (TimeSpan?)TimeSpan.FromSeconds(30))),
            "completing a lease frees no rate budget");
        Assert.That(await Store.GetAsync(fourth.LeaseId, default), Is.Null);
        Assert.That((reopen.Created, reopen.Lease!.LeaseId), Is.EqualTo((false, first.LeaseId)));
        Assert.That((stillRefused.Refusal, stillRefused.RetryAfter), Is.EqualTo((OpenRefusal.RateLimit, (TimeSpan?)TimeSpan.FromSeconds(1))));
        Assert.That(windowMoved.Created, Is.True);
        Assert.That((nextRefused.Refusal, nextRefused.RetryAfter), Is.EqualTo((OpenRefusal.RateLimit, (TimeSpan?)TimeSpan.FromSeconds(9))));
    }
}
