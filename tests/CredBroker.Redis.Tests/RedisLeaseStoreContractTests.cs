using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// The same contract as the in-memory store, against a real redis-server, over RESP2 and RESP3;
/// plus what only Redis has (keys, TTLs, crashes).
/// </summary>
[TestFixture("resp2")]
[TestFixture("resp3")]
[NonParallelizable]
public sealed class RedisLeaseStoreContractTests(string protocol) : LeaseStoreContract
{
    private RedisServer _redis = null!;
    private RedisLeaseStore _store = null!;
    private ConnectionMultiplexer _raw = null!;

    protected override ILeaseStore Store => _store;

    protected override ILeaseStore CreateStore(LeaseStoreOptions options) => RedisLeaseStore.Connect(Configuration(_redis), options);

    /// <summary>The store's configuration: the protocol under test, and a client name to find its connections by.</summary>
    private string Configuration(RedisServer redis) => $"{redis.ConnectionString},protocol={protocol},name=store-{protocol}";

    [OneTimeSetUp]
    public void StartRedis()
    {
        _redis = RedisServer.Start();
        _store = RedisLeaseStore.Connect(Configuration(_redis));
        _raw = ConnectionMultiplexer.Connect(_redis.ConnectionString + ",protocol=resp2,allowAdmin=true");
    }

    [Test]
    public async Task TheStoreSpeaksTheProtocolUnderTest()
    {
        await Store.GetAsync(LeaseIds.For("agent-a", "probe"), default);

        var clients = (string)(await _raw.GetDatabase().ExecuteAsync("CLIENT", "LIST"))!;
        var store = clients.Split('\n').Where(line => line.Contains($" name=store-{protocol} ", StringComparison.Ordinal))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Single(field => field.StartsWith("resp=", StringComparison.Ordinal))).ToList();
        Assert.That(store, Is.Not.Empty);
        Assert.That(store, Has.All.EqualTo("resp=" + protocol[^1..]));
    }

    [Test]
    public void WithoutAProtocolInTheConfiguration_TheBrokerDefaultIsUsed()
    {
        Assert.That(new RedisConnectionOptions().Configure(_redis.ConnectionString).Protocol, Is.EqualTo(RedisConnectionOptions.DefaultProtocol));
        Assert.That(new RedisConnectionOptions().Configure(_redis.ConnectionString + ",protocol=" + protocol).Protocol?.ToString(), Is.EqualTo(protocol).IgnoreCase);
    }

    [OneTimeTearDown]
    public void StopRedis()
    {
        _raw.Dispose();
        _store.Dispose();
        _redis.Dispose();
    }

    [Test]
    public async Task RedisKilled_EveryOperationFailsClosed_AndTheStoreRecoversAfterRestart()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        using var store = RedisLeaseStore.Connect(Configuration(redis));
        var lease = NewLease();
        await store.OpenAsync(lease, LeaseQuota.Unlimited, default);

        redis.Kill();

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.OpenAsync(NewLease(), LeaseQuota.Unlimited, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(lease.LeaseId, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.CompleteAsync(lease.LeaseId, null, Now, null, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RenewAsync(lease.LeaseId, Now.AddMinutes(1), Now, null, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RevokeAsync(lease.LeaseId, "r", "a", Now, null, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ClaimExpiredAsync(0, Now, 10, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.QuarantineAgentAsync("agent-a", "r", "a", Now, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ReadRevocationsAsync(null, 10, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.CurrentRevocationCursorAsync(default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ListLeasesAsync(new LeaseQuery(), Now, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ApproveAsync(lease.LeaseId, ["a:read"], Now.AddMinutes(1), "a", "", Now, null, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.ListOpenLeasesAsync("agent-a", Now, 10, default));

        redis.Restart();
        var read = await WhenBack(() => store.GetAsync(lease.LeaseId, default));

        Assert.That(read?.State, Is.EqualTo(LeaseState.Active), "the lease survived the crash in the AOF");
    }

    /// <summary>
    /// An acknowledged revoke survives a crash. RedisServer runs AOF with <c>appendfsync always</c>:
    /// Redis fsyncs the AOF before it replies, so the acknowledgement means "on disk" (with the
    /// default <c>everysec</c> up to a second of acknowledged writes could be lost).
    /// </summary>
    [Test]
    public async Task AcknowledgedRevoke_SurvivesSigkill_WithAppendOnlyAndFsyncAlways()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        using var store = RedisLeaseStore.Connect(Configuration(redis));
        using (var admin = ConnectionMultiplexer.Connect(redis.ConnectionString + ",allowAdmin=true"))
        {
            var config = admin.GetServer(admin.GetEndPoints()[0]).ConfigGet("append*").ToDictionary(p => p.Key, p => p.Value);
            Assert.That((config["appendonly"], config["appendfsync"]), Is.EqualTo(("yes", "always")));
        }

        var lease = NewLease(NewAgent());
        await store.OpenAsync(lease, LeaseQuota.Unlimited, default);
        var tail = await store.CurrentRevocationCursorAsync(default);
        var revoked = await store.RevokeAsync(lease.LeaseId, "compromised", "ops", Now, null, default);
        Assert.That(revoked.Outcome, Is.EqualTo(TransitionOutcome.Applied));

        redis.Kill();
        redis.Restart();

        var read = await WhenBack(() => store.GetAsync(lease.LeaseId, default));
        var feed = await store.ReadRevocationsAsync(tail, 100, default);
        Assert.That(read!.State, Is.EqualTo(LeaseState.Revoked));
        Assert.That(feed.Events.Select(e => (e.LeaseId, e.Cause)), Is.EqualTo(new[] { ((string?)lease.LeaseId, RevocationCause.Revoked) }));
    }

    [Test]
    public async Task Revoke_WritesADenyEntry_ThatExpiresAtTheLeaseDeadline()
    {
        var lease = NewLease(NewAgent(), ttl: TimeSpan.FromMinutes(7));
        await Store.OpenAsync(lease, LeaseQuota.Unlimited, default);

        await Store.RevokeAsync(lease.LeaseId, "r", "ops", Now, null, default);

        var deny = RedisKeys.Deny(LeaseIds.ShardOf(lease.AgentId), lease.LeaseId);
        var expiresAt = (long)await _raw.GetDatabase().ScriptEvaluateAsync("return redis.call('PEXPIRETIME', KEYS[1])", [deny]);
        Assert.That((string?)await _raw.GetDatabase().StringGetAsync(deny), Is.EqualTo("revoked"));
        Assert.That(expiresAt, Is.EqualTo(lease.Deadline.ToUnixTimeMilliseconds()));
    }

    /// <summary>
    /// The claim re-checks each lease's own deadline: an index entry older than the lease (a renewal
    /// that moved the deadline) is re-indexed, not expired; an entry whose lease is gone is dropped.
    /// </summary>
    /// <summary>
    /// The claim is one index operation per batch: it writes no lease hash, and the lease reads as
    /// expired from then on, even to a caller whose clock is behind the deadline (no resurrection).
    /// </summary>
    [Test]
    public async Task ClaimExpired_WritesNoLeaseHash_AndTheLeaseStaysExpiredForLaggingClocks()
    {
        var agent = NewAgent();
        var shard = LeaseIds.ShardOf(agent);
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(5));
        await Store.OpenAsync(lease, LeaseQuota.Unlimited, default);

        var claimed = await Store.ClaimExpiredAsync(shard, Now.AddSeconds(6), 1000, default);

        Assert.That(claimed.Select(l => l.LeaseId), Does.Contain(lease.LeaseId));
        Assert.That((string?)await _raw.GetDatabase().HashGetAsync(RedisKeys.Lease(shard, lease.LeaseId), "state"), Is.EqualTo("active"), "no per-lease write");
        Assert.That(await _raw.GetDatabase().SortedSetScoreAsync(RedisKeys.Deadlines(shard), lease.LeaseId), Is.Null);
        var lagging = Now.AddSeconds(1); // a replica whose clock is 5 s behind the sweeper's
        Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired));
        Assert.That((await Store.RenewAsync(lease.LeaseId, lagging.AddMinutes(10), lagging, null, default)).Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That((await Store.RevokeAsync(lease.LeaseId, "r", "ops", lagging, null, default)).Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That((await Store.ListLeasesAsync(new LeaseQuery(AgentId: agent), lagging, default)).Leases.Single().State, Is.EqualTo(LeaseState.Expired));
        Assert.That((await Store.OpenAsync(lease, LeaseQuota.Unlimited, default)).Lease!.State, Is.EqualTo(LeaseState.Expired), "a replayed open sees the expired lease");
    }

    /// <summary>A page token whose lease left the index (dropped by retention) still resumes right after it.</summary>
    [Test]
    public async Task List_TokenOfALeaseGoneFromTheIndex_ResumesAfterIt()
    {
        var agent = NewAgent();
        var leases = Enumerable.Range(0, 9).Select(i => NewLease(agent, at: Now.AddMilliseconds(i % 3))).ToList();
        foreach (var l in leases)
        {
            await Store.OpenAsync(l, LeaseQuota.Unlimited, default);
        }

        var first = await Store.ListLeasesAsync(new LeaseQuery(AgentId: agent, PageSize: 4), Now, default);
        await _raw.GetDatabase().SortedSetRemoveAsync(RedisKeys.ShardLeases(LeaseIds.ShardOf(agent)), first.Leases[^1].LeaseId);
        var rest = new List<Lease>();
        var token = first.NextPageToken;
        while (token is not null)
        {
            var page = await Store.ListLeasesAsync(new LeaseQuery(AgentId: agent, PageSize: 2, PageToken: token), Now, default);
            rest.AddRange(page.Leases);
            token = page.NextPageToken;
        }

        Assert.That(first.Leases.Concat(rest).Select(l => l.LeaseId), Is.EquivalentTo(leases.Select(l => l.LeaseId)));
    }

    /// <summary>No unbounded growth: every key either expires or is one of the bounded per-shard/per-agent kinds.</summary>
    [Test]
    public async Task EveryKey_ExpiresOrIsBounded()
    {
        var agent = NewAgent();
        var quota = new LeaseQuota(MaxConcurrent: 50, MaxOpensPerWindow: 50);
        var leases = Enumerable.Range(0, 5).Select(_ => NewLease(agent)).ToList();
        foreach (var l in leases)
        {
            await Store.OpenAsync(l, quota, default);
        }

        await Store.AddChildAsync(leases[2].LeaseId, LeaseIds.For(NewAgent(), "child"), Now, default); // the children index expires with its parent
        await Store.CompleteAsync(leases[0].LeaseId, null, Now, null, default);
        await Store.RevokeAsync(leases[1].LeaseId, "r", "ops", Now, null, default);
        await Store.QuarantineAgentAsync(agent, "r", "ops", Now, default);

        var server = _raw.GetServer(_raw.GetEndPoints()[0]);
        var db = _raw.GetDatabase();
        var unbounded = new List<string>();
        foreach (var key in server.Keys(pattern: "*", pageSize: 1000).Select(k => (string)k!))
        {
            var ttl = (long)await db.ScriptEvaluateAsync("return redis.call('PTTL', KEYS[1])", [key]);
            var bounded = key.EndsWith("}:deadlines", StringComparison.Ordinal) // one per shard; entries leave when leases end
                || key.EndsWith("}:deadlines:claimed", StringComparison.Ordinal) // one per shard: expiries claimed, until recorded (or claimed again)
                || key.EndsWith("}:deadlines:claimed:at", StringComparison.Ordinal) // the same claims by claim time
                || key.EndsWith("}:leases", StringComparison.Ordinal) // one per shard; pruned of dropped leases by every open
                || key.EndsWith("}:revocations", StringComparison.Ordinal) // one stream per shard, capped
                || key.EndsWith("}:revocations:trimmed", StringComparison.Ordinal) // one id per shard
                || key.EndsWith(":quarantine", StringComparison.Ordinal); // one per quarantined agent, until released
            if (ttl == -1 && !bounded) // -2: the key expired between SCAN and PTTL, which is fine
            {
                unbounded.Add(key);
            }
        }

        Assert.That(unbounded, Is.Empty);
        Assert.That(await db.KeyExistsAsync(RedisKeys.AgentOpen(agent)), Is.False, "ending every open lease empties the agent's open index");
    }

    private static async Task<T> WhenBack<T>(Func<Task<T>> read)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                return await read();
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
