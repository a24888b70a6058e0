using System.Net;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// WAIT confirms a write only on the node that took it: when the client routes the key to another node by the
/// time WAIT is sent (a failover between the write and the WAIT), a WAIT there would confirm at once on a
/// connection that wrote nothing, so it is a shortfall instead (found by the Sentinel chaos run: an
/// acknowledged BeginTask whose lease was missing after the failover, with WaitForLeaseWrites).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisReplicaAcksFailoverTests
{
    [Test]
    public async Task PrimaryChangedBetweenTheWriteAndWait_IsAShortfall_SameNodeIsConfirmed()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        using var connection = await ConnectionMultiplexer.ConnectAsync(new RedisConnectionOptions { Timeout = TimeSpan.FromSeconds(10) }.Configure(set.Primary.ConnectionString));
        var acks = new RedisReplicaAcks(1, TimeSpan.FromSeconds(5));
        RedisKey key = "cb:test:acks";
        var primary = connection.GetServer(key).EndPoint;
        await connection.GetDatabase().StringSetAsync(key, "1");

        Assert.That(await acks.UnconfirmedAsync(connection, key, primary), Is.Null, "the replica has the write");
        var elsewhere = new IPEndPoint(IPAddress.Loopback, set.Replicas[0].Port);
        Assert.That(await acks.UnconfirmedAsync(connection, key, elsewhere), Does.Contain("primary changed"));
    }

    /// <summary>
    /// Found by the Sentinel chaos run (a BeginTask answered INTERNAL during a failover): with no node the client could route
    /// the key to (the primary down and the replica not connected, or not yet promoted), StackExchange.Redis's
    /// <c>GetServer(key)</c>, which the write-then-WAIT path asks for the node that takes the write, throws
    /// InvalidOperationException ("It was not possible to resolve a connection to the server owning the specified key").
    /// That is Redis being unavailable: every write that waits for the replicas fails closed, retryable.
    /// </summary>
    [Test]
    public async Task NoNodeForTheKey_WritesThatWaitForReplicas_AreUnavailable_NotAnInternalError()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        using var store = RedisLeaseStore.Connect(set.Primary.ConnectionString, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromSeconds(10) },
            replicaAcks: new RedisReplicaAcks(1, TimeSpan.FromSeconds(5), AllLeaseWrites: true));
        var lease = TestLeases.New("agent-gone");
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        set.Primary.Kill();

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.OpenAsync(TestLeases.New("agent-gone"), LeaseQuota.Unlimited, default), "open (WaitForLeaseWrites)");
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RenewAsync(lease.LeaseId, DateTimeOffset.UtcNow.AddMinutes(6), DateTimeOffset.UtcNow, null, default), "renew");
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RevokeAsync(lease.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default), "revoke");
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.QuarantineAgentAsync("agent-gone", "r", "ops", DateTimeOffset.UtcNow, default), "quarantine");
        Assert.That(RedisFaults.IsUnavailable(new InvalidOperationException("It was not possible to resolve a connection to the server owning the specified key")), Is.True);
        Assert.That(RedisFaults.IsUnavailable(new InvalidOperationException("Sequence contains no elements")), Is.False, "other invalid operations are bugs");

        // Back: the same calls succeed again.
        set.Primary.Restart();
        Assert.That((await TestLeases.WhenAvailable(() => store.RevokeAsync(lease.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default))).Outcome, Is.EqualTo(TransitionOutcome.Applied));
    }
}
