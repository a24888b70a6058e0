using System.Net;
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
}
