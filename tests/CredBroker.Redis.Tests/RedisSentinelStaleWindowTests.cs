using System.Collections.Concurrent;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A Sentinel failover as the chaos run makes it (issue 17, the open finding "an acknowledged approval request whose lease
/// was missing"): the primary is SIGKILLed, Sentinel promotes the replica, and the old primary restarts from its AOF as a
/// *primary* (its own arguments name no primary) until Sentinel turns it into a replica (seconds later): for a while there
/// are two primaries. With every lease write waiting for one replica (WaitForLeaseWrites), nothing is acknowledged while
/// neither has a replica, and every acknowledged lease exists afterwards and is never read as missing by another broker.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSentinelStaleWindowTests
{
    [Test]
    public async Task OldPrimaryBackAsAPrimary_NoAcknowledgedLeaseIsLost_OrReadAsMissing()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 1000);
        var acks = new RedisReplicaAcks(1, TimeSpan.FromSeconds(1), AllLeaseWrites: true);
        using var writer = RedisLeaseStore.Connect(set.SentinelConfiguration, replicaAcks: acks);
        using var reader = RedisLeaseStore.Connect(set.SentinelConfiguration, replicaAcks: acks);
        await TestLeases.WhenAvailable(() => writer.OpenAsync(TestLeases.New(), LeaseQuota.Unlimited, default));
        var acked = new ConcurrentQueue<string>();
        var missing = new ConcurrentQueue<string>();
        var unexpected = new ConcurrentQueue<Exception>();
        using var stop = new CancellationTokenSource();
        var writes = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var lease = TestLeases.New("agent-" + Random.Shared.Next(8));
                try
                {
                    if ((await writer.OpenAsync(lease, LeaseQuota.Unlimited, default)).Created)
                    {
                        acked.Enqueue(lease.LeaseId);
                    }
                }
                catch (StoreUnavailableException)
                {
                    await Task.Delay(20);
                }
                catch (Exception e)
                {
                    unexpected.Enqueue(e);
                }
            }
        });
        var reads = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // The newest acknowledged leases, through the other broker's connections.
                foreach (var id in acked.Reverse().Take(10).ToList())
                {
                    try
                    {
                        if (await reader.GetAsync(id, default) is null)
                        {
                            missing.Enqueue(id);
                        }
                    }
                    catch (StoreUnavailableException)
                    {
                    }
                    catch (Exception e)
                    {
                        unexpected.Enqueue(e);
                    }
                }

                await Task.Delay(20);
            }
        });

        await Eventually.Until(() => acked.Count >= 20, "acknowledged opens before the fault");
        var oldPrimary = set.Primary;
        oldPrimary.Kill();
        await Eventually.Until(() => set.SentinelPrimaryPort(set.Sentinels[0]) == set.Replicas[0].Port, "Sentinel promoted the replica");
        oldPrimary.Restart();
        var stale = set.Cli(oldPrimary.Port, "ROLE").StartsWith("master", StringComparison.Ordinal);
        var before = acked.Count;
        await Eventually.Until(() => set.Cli(oldPrimary.Port, "INFO replication").Contains("master_link_status:up", StringComparison.Ordinal), "the old primary became a replica");
        await Eventually.Until(() => acked.Count >= before + 20, "acknowledged opens after the failover");
        stop.Cancel();
        await Task.WhenAll(writes, reads);

        using var primary = await ConnectionMultiplexer.ConnectAsync(set.Replicas[0].ConnectionString);
        var lost = new List<string>();
        foreach (var id in acked)
        {
            Assert.That(LeaseIds.TryGetShard(id, out var shard), Is.True);
            if (!await primary.GetDatabase().KeyExistsAsync(RedisKeys.Lease(shard, id)))
            {
                lost.Add(id);
            }
        }

        Assert.That(unexpected, Is.Empty, "every failure is unavailable");
        Assert.That(lost, Is.Empty, $"{lost.Count} of {acked.Count} acknowledged leases lost");
        Assert.That(missing, Is.Empty, "an acknowledged lease read as missing");
        TestContext.Out.WriteLine($"{acked.Count} acknowledged; the old primary restarted as a primary: {stale}");
    }
}
