using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>The same contract as the in-memory store, against a real redis-server.</summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisLeaseStoreContractTests : LeaseStoreContract
{
    private RedisServer _redis = null!;
    private RedisLeaseStore _store = null!;

    protected override ILeaseStore Store => _store;

    [OneTimeSetUp]
    public void StartRedis()
    {
        _redis = RedisServer.Start();
        _store = RedisLeaseStore.Connect(_redis.ConnectionString);
    }

    [OneTimeTearDown]
    public void StopRedis()
    {
        _store.Dispose();
        _redis.Dispose();
    }

    [Test]
    public async Task RedisKilled_EveryOperationFailsClosed_AndTheStoreRecoversAfterRestart()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        using var store = RedisLeaseStore.Connect(redis.ConnectionString);
        var lease = NewLease();
        await store.OpenAsync(lease, default);

        redis.Kill();

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.OpenAsync(NewLease(), default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(lease.LeaseId, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.CompleteAsync(lease.LeaseId, Now, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.RenewAsync(lease.LeaseId, Now.AddMinutes(1), Now, default));

        redis.Restart();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        Lease? read = null;
        while (read is null && DateTime.UtcNow < deadline)
        {
            try
            {
                read = await store.GetAsync(lease.LeaseId, default);
            }
            catch (StoreUnavailableException)
            {
                await Task.Delay(100);
            }
        }

        Assert.That(read?.State, Is.EqualTo(LeaseState.Active), "the lease survived the crash in the AOF");
    }
}
