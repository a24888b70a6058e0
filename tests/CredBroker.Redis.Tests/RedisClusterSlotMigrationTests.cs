using System.Globalization;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A lease script on a Redis Cluster slot that is migrating away: its declared keys are all still on the old
/// master (so Redis runs it), but a key it builds from data (the agent's open index) has already moved. Redis
/// would abort the script at that command, after its earlier writes; the scripts probe the slot first and answer
/// TRYAGAIN with nothing written, which the store reports as unavailable.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterSlotMigrationTests
{
    [Test]
    [CancelAfter(120_000)]
    public async Task RenewWhileTheAgentIndexHasMigrated_IsUnavailable_AndWritesNothing()
    {
        using var cluster = RedisCluster.Start(fullCoverage: false);
        const string agent = "agent-mig";
        var shard = LeaseIds.ShardOf(agent);
        var tag = "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";
        var slot = RedisCluster.SlotOf(tag).ToString(CultureInfo.InvariantCulture);
        var source = cluster.MasterOf(tag);
        var target = cluster.Masters().First(m => m != source);
        using var store = RedisLeaseStore.Connect(cluster.ConnectionString, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromSeconds(10) });
        var lease = TestLeases.New(agent);
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        Assert.That(RedisCluster.Command(target, "cluster", "setslot", slot, "importing", RedisCluster.NodeId(source)), Does.Contain("OK"));
        Assert.That(RedisCluster.Command(source, "cluster", "setslot", slot, "migrating", RedisCluster.NodeId(target)), Does.Contain("OK"));
        Assert.That(RedisCluster.Command(source, "migrate", "127.0.0.1", target.Port.ToString(CultureInfo.InvariantCulture), (string)RedisKeys.AgentOpen(agent)!, "0", "5000"),
            Does.Contain("OK"));

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RenewAsync(lease.LeaseId, lease.Deadline.AddMinutes(2), DateTimeOffset.UtcNow, null, default));
        using var direct = await ConnectionMultiplexer.ConnectAsync(source.ConnectionString);
        var onSource = await direct.GetDatabase().HashGetAsync(RedisKeys.Lease(shard, lease.LeaseId), "deadline");
        Assert.That((long)onSource, Is.EqualTo(lease.Deadline.ToUnixTimeMilliseconds()), "nothing was written on the migrating master");
    }
}
