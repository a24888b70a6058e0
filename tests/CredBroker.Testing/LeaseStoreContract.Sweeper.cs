using System.Collections.Concurrent;
using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>The sweeper primitive: <see cref="ILeaseStore.ClaimExpiredAsync"/>.</summary>
public abstract partial class LeaseStoreContract
{
    [Test]
    public async Task ClaimExpired_ExpiresOnlyDueOpenLeases_AtTheirDeadline_WithoutEvents()
    {
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        var due = NewLease(agent, ttl: TimeSpan.FromSeconds(10));
        var notDue = NewLease(agent, ttl: TimeSpan.FromMinutes(50));
        var completed = NewLease(agent, ttl: TimeSpan.FromSeconds(10));
        foreach (var l in new[] { due, notDue, completed })
        {
            await Open(l);
        }

        await Complete(completed.LeaseId, Now);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var claimed = await ClaimAll(Now.AddMinutes(1));
        var again = await Claim(shard, Now.AddMinutes(1), 1000);

        var mine = claimed.Where(l => LeaseIds.TryGetShard(l.LeaseId, out var s) && s == shard && new[] { due, notDue, completed }.Any(x => x.LeaseId == l.LeaseId)).ToList();
        Assert.That(mine.Select(l => l.LeaseId), Is.EqualTo(new[] { due.LeaseId }));
        Assert.That(mine[0], Is.EqualTo(new ExpiredLease(due.LeaseId, due.Deadline)));
        // Expiry is terminal by time; a store may record it without a generation bump (Redis writes nothing per lease).
        var stored = await Store.GetAsync(due.LeaseId, default);
        Assert.That((stored!.State, stored.EndedAt), Is.EqualTo((LeaseState.Expired, (DateTimeOffset?)due.Deadline)));
        Assert.That(again.Select(l => l.LeaseId), Does.Not.Contain(due.LeaseId));
        Assert.That((await Store.GetAsync(notDue.LeaseId, default))!.State, Is.EqualTo(LeaseState.Active));
        Assert.That((await Store.GetAsync(completed.LeaseId, default))!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That((await ReadAll(tail)).Events.Where(e => e.AgentId == agent), Is.Empty, "expiry by deadline needs no event");
    }

    [Test]
    public async Task ClaimExpired_SaysWhenTheShardNextHasSomethingDue_ADeadlineOrAnUnconfirmedClaimsTimeout()
    {
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(10));
        await Open(lease);
        try
        {
            var before = await Store.ClaimExpiredAsync(shard, Now.AddSeconds(1), 1000, default);
            Assert.That(before.NextDue, Is.Not.Null.And.GreaterThan(Now.AddSeconds(1)).And.LessThanOrEqualTo(lease.Deadline),
                "the lease's deadline (or an earlier one on the shard)");

            var at = Now.AddSeconds(11);
            var claimed = await Store.ClaimExpiredAsync(shard, at, 1000, default);
            Assert.That(claimed.Select(l => l.LeaseId), Does.Contain(lease.LeaseId));
            Assert.That(claimed.NextDue, Is.Not.Null.And.GreaterThan(at).And.LessThanOrEqualTo(at + ExpiredLease.ClaimTimeout),
                "claimed but not confirmed: due again when the claim times out");
        }
        finally
        {
            await ClaimAll(Now.AddMinutes(10));
        }
    }

    [Test]
    public async Task ClaimExpired_TakesAtMostTheLimit_OldestFirst()
    {
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        await ClaimAll(Now.AddSeconds(30));
        var leases = new[] { 3, 1, 2 }.Select(s => NewLease(agent, ttl: TimeSpan.FromSeconds(s))).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var first = await Claim(shard, Now.AddSeconds(5), 2);
        var second = await Claim(shard, Now.AddSeconds(5), 2);

        Assert.That(first.Select(l => l.LeaseId), Is.EqualTo(new[] { leases[1].LeaseId, leases[2].LeaseId }));
        Assert.That(second.Select(l => l.LeaseId), Is.EqualTo(new[] { leases[0].LeaseId }));
    }

    [Test]
    public async Task ParallelClaimers_ClaimEveryDueLeaseExactlyOnce()
    {
        var agents = Enumerable.Range(0, 10).Select(_ => NewAgent()).ToList();
        var leases = Enumerable.Range(0, 500).Select(i => NewLease(agents[i % agents.Count], ttl: TimeSpan.FromSeconds(1 + (i % 7)))).ToList();
        await Task.WhenAll(leases.Select(l => Open(l)));
        var claimed = new ConcurrentBag<string>();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(claimer => Task.Run(async () =>
        {
            for (var round = 0; round < 2; round++)
            {
                for (var i = 0; i < LeaseIds.ShardCount; i++)
                {
                    var shard = (i + claimer) % LeaseIds.ShardCount;
                    IReadOnlyList<ExpiredLease> batch;
                    do
                    {
                        batch = await Claim(shard, Now.AddSeconds(10), 7);
                        foreach (var l in batch)
                        {
                            claimed.Add(l.LeaseId);
                        }
                    }
                    while (batch.Count > 0);
                }
            }
        })));

        Assert.That(claimed, Is.Unique);
        Assert.That(claimed.Intersect(leases.Select(l => l.LeaseId)).Count(), Is.EqualTo(leases.Count));
    }

    [Test]
    public async Task RenewRacingClaim_ALeaseWhoseDeadlineMovedIsNeverExpired()
    {
        var agent = NewAgent();
        var leases = Enumerable.Range(0, 60).Select(_ => NewLease(agent, ttl: TimeSpan.FromSeconds(5))).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        // Renewals happen at Now+1s (before the deadline); the sweeper runs "at" Now+6s.
        var renewals = leases.Select(l => Task.Run(() => Renew(l.LeaseId, Now.AddMinutes(30), Now.AddSeconds(1)))).ToList();
        var claims = Enumerable.Range(0, 4).Select(_ => Task.Run(() => ClaimAll(Now.AddSeconds(6)))).ToList();
        await Task.WhenAll(renewals.Cast<Task>().Concat(claims));

        var claimed = claims.SelectMany(c => c.Result).Select(l => l.LeaseId).ToHashSet();
        for (var i = 0; i < leases.Count; i++)
        {
            var final = await Store.GetAsync(leases[i].LeaseId, default);
            if (renewals[i].Result.Outcome == TransitionOutcome.Applied)
            {
                Assert.That((final!.State, final.Deadline), Is.EqualTo((LeaseState.Active, Now.AddMinutes(30))), "the renewal won: not expired");
                Assert.That(claimed, Does.Not.Contain(leases[i].LeaseId));
            }
            else
            {
                Assert.That(renewals[i].Result.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
                Assert.That((final!.State, final.EndedAt), Is.EqualTo((LeaseState.Expired, (DateTimeOffset?)leases[i].Deadline)));
                Assert.That(claimed, Does.Contain(leases[i].LeaseId));
            }
        }

        var mine = leases.Select(l => l.LeaseId).ToHashSet();
        Assert.That((await ClaimAll(Now.AddMinutes(31))).Count(l => mine.Contains(l.LeaseId)),
            Is.EqualTo(renewals.Count(r => r.Result.Outcome == TransitionOutcome.Applied)), "renewed leases stay indexed at their new deadline");
    }

    [Test]
    public async Task CompleteRacingClaim_ExactlyOneWins_AndTheLoserIsNotApplicable()
    {
        var agent = NewAgent();
        var leases = Enumerable.Range(0, 60).Select(_ => NewLease(agent, ttl: TimeSpan.FromSeconds(5))).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var tail = await Store.CurrentRevocationCursorAsync(default);
        // The runtime completes "at" Now+4s (before the deadline); the sweeper runs "at" Now+6s.
        var completions = leases.Select(l => Task.Run(() => Complete(l.LeaseId, Now.AddSeconds(4)))).ToList();
        var claims = Enumerable.Range(0, 4).Select(_ => Task.Run(() => ClaimAll(Now.AddSeconds(6)))).ToList();
        await Task.WhenAll(completions.Cast<Task>().Concat(claims));

        var claimed = claims.SelectMany(c => c.Result).Select(l => l.LeaseId).ToList();
        Assert.That(claimed, Is.Unique);
        for (var i = 0; i < leases.Count; i++)
        {
            var completedIt = completions[i].Result.Outcome == TransitionOutcome.Applied;
            var claimedIt = claimed.Contains(leases[i].LeaseId);
            Assert.That(completedIt ^ claimedIt, Is.True, "exactly one of complete and claim wins");
            Assert.That(completions[i].Result.Outcome, Is.EqualTo(completedIt ? TransitionOutcome.Applied : TransitionOutcome.NotApplicable));
            Assert.That((await Store.GetAsync(leases[i].LeaseId, default))!.State, Is.EqualTo(completedIt ? LeaseState.Completed : LeaseState.Expired));
        }

        Assert.That((await ReadAll(tail)).Events.Count(e => e.AgentId == agent),
            Is.EqualTo(completions.Count(c => c.Result.Outcome == TransitionOutcome.Applied)), "one event per completion, none per expiry");
    }
}
