using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// Issue 17 (Sentinel chaos run: an acknowledged renewal "expired at the older deadline" and an acknowledged pending
/// BeginTask whose lease was missing, both right after a failover). After a failover the old primary restarts from its AOF
/// as a primary until Sentinel makes it a replica (about 10 s). StackExchange.Redis reconnects to it, sees two primaries and
/// elects the old one: every command of the store went there for that whole window (an exploration: 310 of 310 writes
/// through a Sentinel-managed client landed on the old primary, none on the promoted one, and all were discarded when the
/// old primary became a replica). Writes followed by WAIT failed there, but a sweeper's claim (no WAIT) was taken on the
/// stale node, and its expiry recorded later against the promoted primary's chain, and every read saw the data of before the
/// failover. The store now fails closed (unavailable) while it sees two primaries.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelOldPrimaryTests
{
    [Test]
    public async Task OldPrimaryBackAsAPrimary_NoClaimIsTakenOnIt_AndTheStoreIsUnavailable_UntilItIsAReplica()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 1000);
        using var store = RedisLeaseStore.Connect(set.SentinelConfiguration, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromSeconds(10) },
            replicaAcks: new RedisReplicaAcks(1, TimeSpan.FromSeconds(1), AllLeaseWrites: true));
        var lease = TestLeases.New("agent-stale", ttl: TimeSpan.FromSeconds(1));
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        Assert.That(LeaseIds.TryGetShard(lease.LeaseId, out var shard), Is.True);
        var claimedKey = (string)RedisKeys.Claimed(shard)!;
        var old = set.Primary;
        var promoted = set.Replicas[0];

        old.Kill();
        await Eventually.Until(() => set.SentinelPrimaryPort(set.Sentinels[0]) == promoted.Port, "Sentinel promoted the replica");
        // The client follows the promotion (a read answered while the old primary is down comes from the promoted one), as
        // in the chaos run, whose old primary is restarted after a pause; then the old primary comes back.
        await TestLeases.WhenAvailable(() => store.GetAsync(lease.LeaseId, default));
        old.Restart();
        Assert.That(set.Cli(old.Port, "ROLE"), Does.StartWith("master"), "the old primary is back as a primary");

        // Until Sentinel makes it a replica: the sweeper's claim (a write without WAIT) and reads through the store.
        var claimsOnTheOldPrimary = 0;
        var unavailable = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (set.Cli(old.Port, "ROLE").StartsWith("master", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            try
            {
                await store.ClaimExpiredAsync(shard, DateTimeOffset.UtcNow.AddMinutes(1), 100, default);
                await store.GetAsync(lease.LeaseId, default);
            }
            catch (StoreUnavailableException)
            {
                unavailable++;
            }

            // A claim there, seen while it is still a primary: its role is read after the key, because once it is a replica
            // it holds the promoted primary's data, claims included.
            if (set.Cli(old.Port, $"EXISTS {claimedKey}").Trim() == "1" && set.Cli(old.Port, "ROLE").StartsWith("master", StringComparison.Ordinal))
            {
                claimsOnTheOldPrimary++;
            }

            await Task.Delay(100);
        }

        TestContext.Out.WriteLine($"{unavailable} unavailable calls, {claimsOnTheOldPrimary} checks found a claim on the old primary");
        Assert.That(claimsOnTheOldPrimary, Is.Zero, "a sweeper claim was taken on the old primary (discarded at its resync)");
        Assert.That(unavailable, Is.GreaterThan(0), "the store failed closed while it saw two primaries");

        // Once the old primary is a replica, the store works again, on the promoted primary.
        _ = await TestLeases.WhenAvailable(() => store.ClaimExpiredAsync(shard, DateTimeOffset.UtcNow.AddMinutes(1), 100, default));
        Assert.That(await store.GetAsync(lease.LeaseId, default), Is.Not.Null);
    }
}
