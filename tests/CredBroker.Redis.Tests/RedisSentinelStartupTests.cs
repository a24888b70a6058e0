using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A store whose first connection through Sentinel to the primary fails (the primary is paused or
/// down when the store starts) heals by itself once the Sentinel and the primary answer.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelStartupTests
{
    [Test]
    public async Task PrimaryPausedAtStart_TheStoreWorksOnceItResumes()
    {
        using var set = RedisReplicaSet.Start(replicas: 0);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 60_000);
        set.Primary.Pause();
        RedisLeaseStore store;
        try
        {
            store = RedisLeaseStore.Connect(set.SentinelConfiguration, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromMilliseconds(500) });
        }
        finally
        {
            set.Primary.Resume();
        }

        using (store)
        {
            var opened = await Within(TimeSpan.FromSeconds(30), () => store.OpenAsync(TestLeases.New("agent-p"), LeaseQuota.Unlimited, default));
            Assert.That(opened.Created, Is.True);
        }
    }

    [Test]
    public async Task PrimaryDownAtStart_TheStoreWorksOnceItIsBack()
    {
        using var set = RedisReplicaSet.Start(replicas: 0);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 60_000);
        set.Primary.Kill();
        using var store = RedisLeaseStore.Connect(set.SentinelConfiguration, connection: new RedisConnectionOptions { Timeout = TimeSpan.FromMilliseconds(500) });
        set.Primary.Restart();

        var opened = await Within(TimeSpan.FromSeconds(30), () => store.OpenAsync(TestLeases.New("agent-d"), LeaseQuota.Unlimited, default));
        Assert.That(opened.Created, Is.True);
    }

    [Test]
    public async Task SentinelDownAtStart_TheStoreWorksOnceItAnswers()
    {
        using var set = RedisReplicaSet.Start(replicas: 0);
        var port = RedisServer.FreePort();
        using var store = RedisLeaseStore.Connect($"127.0.0.1:{port},serviceName={RedisReplicaSet.ServiceName}",
            connection: new RedisConnectionOptions { Timeout = TimeSpan.FromMilliseconds(500) });
        Assert.ThrowsAsync<CredBroker.Core.Broker.StoreUnavailableException>(() => store.GetAsync(LeaseIds.For("agent-s", "t"), default));

        using var sentinel = RedisServer.StartSentinel(port, dir => string.Join('\n',
            $"port {port}", "bind 127.0.0.1", $"dir {dir}", "sentinel resolve-hostnames no", "sentinel announce-ip 127.0.0.1",
            $"sentinel monitor {RedisReplicaSet.ServiceName} 127.0.0.1 {set.Primary.Port} 1") + "\n");

        var opened = await Within(TimeSpan.FromSeconds(30), () => store.OpenAsync(TestLeases.New("agent-s"), LeaseQuota.Unlimited, default));
        Assert.That(opened.Created, Is.True);
    }

    private static async Task<T> Within<T>(TimeSpan bound, Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            try
            {
                return await call();
            }
            catch (CredBroker.Core.Broker.StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
