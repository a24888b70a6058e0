using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A configuration with <c>serviceName=</c> names Sentinels, not Redis: the store asks them for the
/// primary, works against it, and follows a failover. Real redis-sentinel processes, a primary and
/// a replica on loopback.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelTests
{
    private RedisReplicaSet _set = null!;

    [SetUp]
    public void Start()
    {
        _set = RedisReplicaSet.Start(replicas: 1);
        _set.StartSentinels(count: 3, quorum: 2);
    }

    [TearDown]
    public void Stop() => _set.Dispose();

    [Test]
    public async Task ThroughTheSentinels_TheStoreWritesToThePrimary()
    {
        using var store = RedisLeaseStore.Connect(_set.SentinelConfiguration);
        var lease = TestLeases.New("agent-s");

        var opened = await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        Assert.That(opened.Created, Is.True);
        using var primary = ConnectionMultiplexer.Connect(_set.Primary.ConnectionString);
        Assert.That(await primary.GetDatabase().KeyExistsAsync(RedisKeys.Lease(LeaseIds.ShardOf("agent-s"), lease.LeaseId)), Is.True);
    }

    /// <summary>
    /// The primary is SIGKILLed right after a revoke the replica acknowledged (WAIT 1); the Sentinels
    /// promote the replica, the store follows them there, and the revocation is still in force.
    /// </summary>
    [Test]
    public async Task PrimaryKilledAfterAnAcknowledgedRevoke_TheStoreFollowsTheFailover_AndTheLeaseIsStillRevoked()
    {
        // Generous timeouts: on a busy 2-core machine the acknowledgement must not miss a short window.
        using var store = RedisLeaseStore.Connect(_set.SentinelConfiguration, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromSeconds(10) },
            replicaAcks: new RedisReplicaAcks(1, TimeSpan.FromSeconds(5)));
        var lease = TestLeases.New("agent-f");
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        Assert.That((await store.RevokeAsync(lease.LeaseId, "compromised", "ops", DateTimeOffset.UtcNow, null, default)).Outcome, Is.EqualTo(TransitionOutcome.Applied));

        _set.Primary.Kill();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (_set.SentinelPrimaryPort(_set.Sentinels[0]) != _set.Replicas[0].Port)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the Sentinels did not promote the replica");
            await Task.Delay(100);
        }

        var read = await WhenWritable(store);
        Assert.That((await store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Revoked));
        Assert.That(read.Created, Is.True, "the store writes to the promoted replica");
    }

    /// <summary>Opens a fresh lease (no WAIT on opens) until the store has found the new primary; within 30 s.</summary>
    private static async Task<LeaseOpenResult> WhenWritable(RedisLeaseStore store)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                return await store.OpenAsync(TestLeases.New("agent-f"), LeaseQuota.Unlimited, default);
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}

/// <summary>Sentinel with a password on the Redis servers (the Sentinels themselves open, as is common), and Sentinels that are down at start.</summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelAuthTests
{
    private const string Password = "sentinel-test,pass=word";

    [Test]
    public async Task PasswordProtectedServers_OpenSentinels_TheStoreWorks()
    {
        using var set = RedisReplicaSet.Start(replicas: 1, password: Password);
        set.StartSentinels(1, 1, 1000, $"sentinel auth-pass {{service}} {Password}");
        using var store = RedisLeaseStore.Connect(set.SentinelConfiguration, connection: new RedisConnectionOptions { Password = Password });

        var opened = await TestLeases.WhenAvailable(() => store.OpenAsync(TestLeases.New("agent-a"), LeaseQuota.Unlimited, default));

        Assert.That(opened.Created, Is.True);
    }

    [Test]
    public void NoSentinelAnswers_ConnectDoesNotThrow_AndCallsFailClosed()
    {
        using var store = RedisLeaseStore.Connect($"127.0.0.1:{RedisServer.FreePort()},serviceName=credbroker");

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(LeaseIds.For("agent-a", "t"), default));
    }
}
