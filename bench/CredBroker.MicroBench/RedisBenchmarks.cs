using BenchmarkDotNet.Attributes;
using CredBroker.Core.Leases;
using CredBroker.Redis;
using CredBroker.Testing;

namespace CredBroker.MicroBench;

/// <summary>
/// The lease store's round trips on a real redis-server over loopback, one at a time (latency, not
/// throughput): the Open script of a new lease followed by the Complete script (so leases do not
/// pile up), and a Get. With and without the production persistence (AOF, appendfsync always).
/// </summary>
[MemoryDiagnoser]
public class RedisBenchmarks
{
    private RedisServer _redis = null!;
    private RedisLeaseStore _store = null!;
    private long _sequence;
    private string _existing = null!;

    [Params(false, true)]
    public bool AppendFsyncAlways { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _redis = RedisServer.Start(appendOnly: AppendFsyncAlways);
        _store = RedisLeaseStore.Connect(_redis.ConnectionString);
        var lease = MintFixture.Lease("existing", DateTimeOffset.UtcNow);
        _store.OpenAsync(lease, LeaseQuota.Unlimited, CancellationToken.None).GetAwaiter().GetResult();
        _existing = lease.LeaseId;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        _redis.Dispose();
    }

    [Benchmark(Description = "Open + Complete a lease (2 scripts)")]
    public async Task<LeaseTransition> OpenThenComplete()
    {
        var now = DateTimeOffset.UtcNow;
        var lease = MintFixture.Lease($"task-{Interlocked.Increment(ref _sequence)}", now);
        var opened = await _store.OpenAsync(lease, LeaseQuota.Unlimited, CancellationToken.None);
        return await _store.CompleteAsync(opened.Lease!.LeaseId, lease.AgentId, now, expectedGeneration: null, CancellationToken.None);
    }

    [Benchmark(Description = "Get a lease")]
    public Task<Lease?> Get() => _store.GetAsync(_existing, CancellationToken.None);
}
