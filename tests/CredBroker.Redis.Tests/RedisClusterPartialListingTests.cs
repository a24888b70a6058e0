using System.Globalization;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>
/// Listing leases while one master of a real 3-master Redis Cluster is down (kill -9): a listing of every
/// agent reads the shards it can and names the others on every page of the walk (the token carries them),
/// nothing readable is skipped or repeated, one agent's listing on the lost master is unavailable, and once
/// the master is back (from its AOF) the listing is complete again.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterPartialListingTests
{
    private static string Tag(int shard) => "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";

    private static string AgentOn(int shard)
    {
        for (var i = 0; ; i++)
        {
            var agent = "agent-" + i.ToString(CultureInfo.InvariantCulture);
            if (LeaseIds.ShardOf(agent) == shard)
            {
                return agent;
            }
        }
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task OneMasterDown_ListingNamesItsShardsOnEveryPage_ReadsTheRestOnce_AndIsCompleteAfterItReturns()
    {
        using var cluster = RedisCluster.Start(appendOnly: true, fullCoverage: false);
        using var store = RedisLeaseStore.Connect(cluster.ConnectionString);
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8] + "@example.com";
        var agents = Enumerable.Range(0, LeaseIds.ShardCount).Select(AgentOn).ToList();
        var leases = agents.SelectMany(a => Enumerable.Range(0, 3).Select(_ => TestLeases.New(a) with { Owner = owner })).ToList();
        foreach (var lease in leases)
        {
            await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        }

        var victim = cluster.MasterOf(Tag(0));
        var lost = Enumerable.Range(0, LeaseIds.ShardCount).Where(s => cluster.MasterOf(Tag(s)) == victim).ToList();
        Assert.That(lost, Has.Count.InRange(1, LeaseIds.ShardCount - 1), "the shards are spread over the masters");
        victim.Kill();

        // A walk in small pages: each page names the lost shards passed so far, the last one all of them.
        var seen = new List<string>();
        IReadOnlyList<int> named = [];
        var query = new LeaseQuery(Owner: owner, PageSize: 2);
        for (var pages = 0; ; pages++)
        {
            Assert.That(pages, Is.LessThan(200), "paging did not end");
            var page = await store.ListLeasesAsync(query, DateTimeOffset.UtcNow, default);
            Assert.That(page.UnreachableShards, Is.SubsetOf(lost).And.Ordered.And.SupersetOf(named), "a page names only lost shards, and every one an earlier page named");
            named = page.UnreachableShards;
            seen.AddRange(page.Leases.Select(l => l.LeaseId));
            if (page.NextPageToken is null)
            {
                break;
            }

            query = query with { PageToken = page.NextPageToken };
        }

        Assert.That(named, Is.EqualTo(lost), "the walk's last page names every lost shard");
        Assert.That(seen, Is.Unique);
        Assert.That(seen, Is.EquivalentTo(leases.Where(l => !lost.Contains(LeaseIds.ShardOf(l.AgentId))).Select(l => l.LeaseId)),
            "every lease on a reachable master exactly once");

        var whole = await store.ListLeasesAsync(new LeaseQuery(Owner: owner, PageSize: 500), DateTimeOffset.UtcNow, default);
        Assert.That(whole.UnreachableShards, Is.EqualTo(lost));
        Assert.That(whole.NextPageToken, Is.Null);

        // One agent's listing reads its shard only: unavailable on the lost master, complete elsewhere.
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ListLeasesAsync(new LeaseQuery(AgentId: agents[lost[0]]), DateTimeOffset.UtcNow, default));
        var kept = Enumerable.Range(0, LeaseIds.ShardCount).First(s => !lost.Contains(s));
        var one = await store.ListLeasesAsync(new LeaseQuery(AgentId: agents[kept]), DateTimeOffset.UtcNow, default);
        Assert.That((one.Leases.Count, one.UnreachableShards.Count), Is.EqualTo((3, 0)));

        victim.Restart();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        LeasePage? complete = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                complete = await store.ListLeasesAsync(new LeaseQuery(Owner: owner, PageSize: 500), DateTimeOffset.UtcNow, default);
                if (complete.UnreachableShards.Count == 0)
                {
                    break;
                }
            }
            catch (StoreUnavailableException)
            {
                // Reconnecting.
            }

            await Task.Delay(200);
        }

        Assert.That(complete?.UnreachableShards, Is.Empty, "the master is back");
        Assert.That(complete!.Leases.Select(l => l.LeaseId), Is.EquivalentTo(leases.Select(l => l.LeaseId)));
    }

    [Test]
    [CancelAfter(180_000)]
    public async Task AMasterThatHangs_ListingAnswersWithTheOtherShards_AndNamesAllOfItsShards()
    {
        // A paused master neither answers nor resets its connections: each read of one of its shards times out
        // (CredBroker:Redis:Timeout), and the page still answers with the other masters' leases.
        using var cluster = RedisCluster.Start(appendOnly: true, fullCoverage: false);
        using var store = RedisLeaseStore.Connect(cluster.ConnectionString);
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8] + "@example.com";
        var leases = Enumerable.Range(0, LeaseIds.ShardCount).Select(s => TestLeases.New(AgentOn(s)) with { Owner = owner }).ToList();
        foreach (var lease in leases)
        {
            await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        }

        var victim = cluster.MasterOf(Tag(3));
        var lost = Enumerable.Range(0, LeaseIds.ShardCount).Where(s => cluster.MasterOf(Tag(s)) == victim).ToList();
        victim.Pause();
        try
        {
            var page = await store.ListLeasesAsync(new LeaseQuery(Owner: owner, PageSize: 500), DateTimeOffset.UtcNow, default);

            Assert.That(page.UnreachableShards, Is.EqualTo(lost));
            Assert.That(page.Leases.Select(l => l.LeaseId), Is.EquivalentTo(leases.Where(l => !lost.Contains(LeaseIds.ShardOf(l.AgentId))).Select(l => l.LeaseId)));
        }
        finally
        {
            victim.Resume();
        }
    }
}
