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
