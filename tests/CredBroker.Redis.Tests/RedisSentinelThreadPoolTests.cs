using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A store connected through Sentinel raises the thread pool's minimum (RedisMultiplexer.SentinelMinWorkerThreads):
/// StackExchange.Redis follows a failover with blocking calls on pool threads, which starved a 2-core broker for
/// seconds after each failover in the chaos runs (issue 17). The pool setting is process-wide, so this only shows the
/// floor is in force once a Sentinel-managed store is connected (it is never lowered).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelThreadPoolTests
{
    [Test]
    public async Task ThroughTheSentinels_ThePoolStartsEnoughThreadsForTheClientsBlockingFailoverHandling()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1);
        using var store = RedisLeaseStore.Connect(set.SentinelConfiguration);
        await TestLeases.WhenAvailable(() => store.OpenAsync(TestLeases.New("agent-t"), LeaseQuota.Unlimited, default));

        ThreadPool.GetMinThreads(out var workers, out _);
        Assert.That(workers, Is.GreaterThanOrEqualTo(RedisMultiplexer.SentinelMinWorkerThreads));
    }
}
