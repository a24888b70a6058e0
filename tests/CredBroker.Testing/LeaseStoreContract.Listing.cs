using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>Operator listing.</summary>
public abstract partial class LeaseStoreContract
{
    private async Task<List<Lease>> ListAll(LeaseQuery query, DateTimeOffset at)
    {
        var all = new List<Lease>();
        for (var pages = 0; pages < 10_000; pages++)
        {
            var page = await Store.ListLeasesAsync(query, at, default);
            Assert.That(page.Leases, Has.Count.LessThanOrEqualTo(query.PageSize));
            all.AddRange(page.Leases);
            if (page.NextPageToken is null)
            {
                return all;
            }

            query = query with { PageToken = page.NextPageToken };
        }

        throw new AssertionException("paging did not end");
    }

    [Test]
    public async Task List_PagingCoversEveryLeaseExactlyOnce_WithFiltersAndStatesAsOfNow()
    {
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8] + "@example.com";
        var agents = Enumerable.Range(0, 3).Select(_ => NewAgent()).ToList();
        var leases = Enumerable.Range(0, 37)
            .Select(i => NewLease(agents[i % 3], ttl: TimeSpan.FromMinutes(i % 2 == 0 ? 1 : 30), owner: owner, at: Now.AddMilliseconds(i % 4)))
            .ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var completed = leases.Where((_, i) => i % 5 == 0).Select(l => l.LeaseId).ToHashSet();
        foreach (var id in completed)
        {
            await Complete(id, Now);
        }

        var at = Now.AddMinutes(5);
        var byAgent = await ListAll(new LeaseQuery(AgentId: agents[0], PageSize: 4), at);
        var byOwner = await ListAll(new LeaseQuery(Owner: owner, PageSize: 7), at);
        var everything = await ListAll(new LeaseQuery(PageSize: 500), at);
        var expiredOfAgent = await ListAll(new LeaseQuery(AgentId: agents[1], State: LeaseState.Expired, PageSize: 2), at);
        var completedOfOwner = await ListAll(new LeaseQuery(Owner: owner, State: LeaseState.Completed, PageSize: 3), at);

        Assert.That(byAgent.Select(l => l.LeaseId), Is.EquivalentTo(leases.Where(l => l.AgentId == agents[0]).Select(l => l.LeaseId)));
        Assert.That(byOwner.Select(l => l.LeaseId), Is.EquivalentTo(leases.Select(l => l.LeaseId)));
        Assert.That(everything.Select(l => l.LeaseId), Is.Unique);
        Assert.That(everything.Select(l => l.LeaseId), Is.SupersetOf(leases.Select(l => l.LeaseId)));
        Assert.That(expiredOfAgent.Select(l => l.LeaseId), Is.EquivalentTo(
            leases.Where((l, i) => l.AgentId == agents[1] && i % 2 == 0 && !completed.Contains(l.LeaseId)).Select(l => l.LeaseId)));
        Assert.That(expiredOfAgent.Select(l => (l.State, l.EndedAt == l.Deadline)), Is.All.EqualTo((LeaseState.Expired, true)), "reported as of now, before any sweep");
        Assert.That(completedOfOwner.Select(l => l.LeaseId), Is.EquivalentTo(completed));
    }

    [Test]
    public async Task List_WhileLeasesChange_NeverRepeatsOrSkipsAnUnchangedLease()
    {
        var agent = NewAgent();
        var leases = Enumerable.Range(0, 20).Select(_ => NewLease(agent)).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var seen = new List<string>();
        var query = new LeaseQuery(AgentId: agent, PageSize: 3);
        var added = new List<Lease>();
        while (true)
        {
            var page = await Store.ListLeasesAsync(query, Now, default);
            seen.AddRange(page.Leases.Select(l => l.LeaseId));
            var extra = NewLease(agent);
            await Open(extra);
            added.Add(extra);
            await Revoke(leases[added.Count % leases.Count].LeaseId, Now);
            if (page.NextPageToken is null)
            {
                break;
            }

            query = query with { PageToken = page.NextPageToken };
        }

        Assert.That(seen, Is.Unique);
        Assert.That(seen, Is.SupersetOf(leases.Select(l => l.LeaseId)));
    }

    /// <summary>An agent id whose leases live in <paramref name="shard"/>.</summary>
    protected static string AgentOnShard(int shard)
    {
        while (true)
        {
            var agent = NewAgent();
            if (LeaseIds.ShardOf(agent) == shard)
            {
                return agent;
            }
        }
    }

    [Test]
    public async Task List_ATokenThatSkippedShards_NamesThemOnEveryLaterPage_AndResumesAfterItsPosition()
    {
        // A walk that could not read shards 2 and 5 (a lost Redis master) carries them in its token: every
        // later page names them, the walk goes on from its position, and a new walk starts complete.
        var owner = "owner-" + Guid.NewGuid().ToString("N")[..8] + "@example.com";
        var leases = new[] { AgentOnShard(9), AgentOnShard(12) }.SelectMany(a => Enumerable.Range(0, 3).Select(_ => NewLease(a, owner: owner))).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var first = await Store.ListLeasesAsync(new LeaseQuery(Owner: owner, PageSize: 2), Now, default);
        Assert.That(first.UnreachableShards, Is.Empty, "every shard was read");
        Assert.That(LeasePageToken.TryParse(first.NextPageToken, out var position), Is.True, first.NextPageToken);
        var skipping = position with { Skipped = (1 << 2) | (1 << 5) };
        Assert.That(skipping.ToString(), Does.StartWith("p2.0024.9."));

        var seen = first.Leases.Select(l => l.LeaseId).ToList();
        var query = new LeaseQuery(Owner: owner, PageSize: 2, PageToken: skipping.ToString());
        for (var pages = 0; ; pages++)
        {
            Assert.That(pages, Is.LessThan(100), "paging did not end");
            var page = await Store.ListLeasesAsync(query, Now, default);
            Assert.That(page.UnreachableShards, Is.EqualTo(new[] { 2, 5 }), "every later page names the skipped shards");
            seen.AddRange(page.Leases.Select(l => l.LeaseId));
            if (page.NextPageToken is null)
            {
                break;
            }

            Assert.That(page.NextPageToken, Does.StartWith("p2.0024."));
            query = query with { PageToken = page.NextPageToken };
        }

        Assert.That(seen, Is.Unique);
        Assert.That(seen, Is.EquivalentTo(leases.Select(l => l.LeaseId)));
    }

    [TestCase(0, null)]
    [TestCase(501, null)]
    [TestCase(10, "garbage")]
    [TestCase(10, "p1.3.123.l04_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p1.03.123.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p1.3.-5.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p1.3.123.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa.x")]
    [TestCase(10, "p2.0000.3.123.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p2.0008.3.123.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p2.0010.3.123.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p2.000A.5.123.l05_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p2.a.5.123.l05_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p2.-001.5.123.l05_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase(10, "p3.0001.5.123.l05_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void List_BadPageSizeOrToken_IsRejected(int pageSize, string? token) =>
        Assert.ThrowsAsync<ArgumentException>(() => Store.ListLeasesAsync(new LeaseQuery(PageSize: pageSize, PageToken: token), Now, default));
}
