using System.Globalization;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// WAIT on a Redis Cluster with one replica per master: the WAIT must reach the master that took the write.
/// While a slot migrates, a lease script can be carried by an <c>ASK</c> redirect to the importing master; a
/// WAIT then sent to the master the slot map names (the migrating one) would count that master's replicas and
/// confirm a write that no replica holds. The store does not follow redirects on writes that WAIT: the call is
/// unavailable (retryable) and nothing unconfirmed is acknowledged.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterReplicaAcksTests
{
    private static readonly RedisConnectionOptions Patient = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Test]
    [CancelAfter(180_000)]
    public async Task AskRedirectToAMasterWithoutReplica_RenewIsUnavailable_NotConfirmedByTheOtherMastersReplica()
    {
        using var cluster = RedisCluster.Start(replicasPerMaster: 1, fullCoverage: false);
        const string agent = "agent-ask";
        var tag = "cb:{s" + LeaseIds.ShardOf(agent).ToString("x2", CultureInfo.InvariantCulture) + "}:";
        var slot = RedisCluster.SlotOf(tag);
        var source = cluster.MasterOf(tag);
        var target = cluster.Masters().First(m => m != source);
        var targetReplica = cluster.ReplicasOf(target).Single();
        using var store = RedisLeaseStore.Connect(cluster.ConnectionString, connection: Patient,
            replicaAcks: new RedisReplicaAcks(1, TimeSpan.FromMilliseconds(500), AllLeaseWrites: true));
        var lease = TestLeases.New(agent);
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        // The importing master loses its replica; the source keeps its own (it would acknowledge any WAIT).
        targetReplica.Kill();
        var (s, sourceId, targetId) = (slot.ToString(CultureInfo.InvariantCulture), RedisCluster.NodeId(source), RedisCluster.NodeId(target));
        Assert.That(RedisCluster.Command(target, "cluster", "setslot", s, "importing", sourceId), Does.Contain("OK"));
        Assert.That(RedisCluster.Command(source, "cluster", "setslot", s, "migrating", targetId), Does.Contain("OK"));
        var keys = RedisCluster.Command(source, "cluster", "getkeysinslot", s, "100").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(keys, Is.Not.Empty);
        Assert.That(RedisCluster.Command(source, ["migrate", "127.0.0.1", target.Port.ToString(CultureInfo.InvariantCulture), "", "0", "5000", "keys", .. keys]), Does.Contain("OK"));

        // The source has none of the renewal's keys: it answers ASK; the importing master would run the script.
        var now = DateTimeOffset.UtcNow;
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RenewAsync(lease.LeaseId, lease.Deadline.AddMinutes(2), now, null, default),
            "a renewal carried by ASK to a master without a replica must not be confirmed by the migrating master's replica");
        using (var direct = await ConnectionMultiplexer.ConnectAsync(target.ConnectionString))
        {
            var deadline = await direct.GetDatabase().HashGetAsync(RedisKeys.Lease(LeaseIds.ShardOf(agent), lease.LeaseId), "deadline");
            Assert.That(deadline.HasValue, Is.True, "the lease's keys are on the importing master");
        }

        // The migration completes and the replica returns: the retry is confirmed by the slot's new master's replica.
        Assert.That(RedisCluster.Command(target, "cluster", "setslot", s, "node", targetId), Does.Contain("OK"));
        Assert.That(RedisCluster.Command(source, "cluster", "setslot", s, "node", targetId), Does.Contain("OK"));
        targetReplica.Restart();
        cluster.WaitUntil(() => RedisCluster.IsLinkedReplica(targetReplica), "the importing master's replica never linked again");
        var renewed = await TestLeases.WhenAvailable(() => store.RenewAsync(lease.LeaseId, lease.Deadline.AddMinutes(2), DateTimeOffset.UtcNow, null, default));
        Assert.That(renewed.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        using var replica = await ConnectionMultiplexer.ConnectAsync(targetReplica.ConnectionString);
        var onReplica = await replica.GetDatabase().HashGetAsync(RedisKeys.Lease(LeaseIds.ShardOf(agent), lease.LeaseId), "deadline");
        Assert.That((long)onReplica, Is.EqualTo(lease.Deadline.AddMinutes(2).ToUnixTimeMilliseconds()), "the acknowledged renewal is on the replica");
    }
}
