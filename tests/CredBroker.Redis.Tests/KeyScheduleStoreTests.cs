using CredBroker.Core.Tokens;
using CredBroker.Redis;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>The key schedule store contract, on a real Redis and in memory: empty start, round trip, compare-and-set.</summary>
[TestFixture("redis", "resp2")]
[TestFixture("redis", "resp3")]
[TestFixture("memory", "")]
public sealed class KeyScheduleStoreTests(string kind, string protocol)
{
    private RedisServer? _redis;
    private RedisLeaseStore? _leases;
    private IKeyScheduleStore _store = null!;

    [SetUp]
    public void Open()
    {
        if (kind == "redis")
        {
            _redis = RedisServer.Start();
            _leases = RedisLeaseStore.Connect(_redis.ConnectionString + ",protocol=" + protocol);
            _store = _leases.KeySchedule();
        }
        else
        {
            _store = new InMemoryKeyScheduleStore();
        }
    }

    [TearDown]
    public void Close()
    {
        _leases?.Dispose();
        _redis?.Dispose();
    }

    [Test]
    public async Task ANewStore_HasTheEmptySchedule()
    {
        Assert.That((await _store.GetAsync(CancellationToken.None)).Version, Is.Zero);
    }

    [Test]
    public async Task Replace_WritesOnlyOverTheExpectedVersion()
    {
        using var first = SigningKey.Generate();
        using var second = SigningKey.Generate();
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var v1 = KeySchedule.Bootstrap(first, now);
        var v2 = v1.Rotate(second, now, TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(16));

        Assert.That(await _store.TryReplaceAsync(0, v1, CancellationToken.None), Is.True);
        Assert.That(await _store.TryReplaceAsync(0, v1 with { Keys = [] }, CancellationToken.None), Is.False, "a second bootstrap loses");
        Assert.That(await _store.TryReplaceAsync(1, v2, CancellationToken.None), Is.True);
        Assert.That(await _store.TryReplaceAsync(1, v2, CancellationToken.None), Is.False, "a writer that read version 1 loses after the rotation");

        var stored = await _store.GetAsync(CancellationToken.None);
        Assert.That(stored.Version, Is.EqualTo(2));
        Assert.That(stored.Keys, Is.EqualTo(v2.Keys));
    }
}
