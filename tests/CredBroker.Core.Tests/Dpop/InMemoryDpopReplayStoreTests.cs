using CredBroker.Core.Dpop;
using CredBroker.Testing;

namespace CredBroker.Core.Tests.Dpop;

/// <summary>The dev replay store: once per key within its ttl, bounded (full of live entries → refuse).</summary>
[TestFixture]
public sealed class InMemoryDpopReplayStoreTests
{
    [Test]
    public async Task RecordsOnce_ForgetsAfterTtl_AndRefusesWhenFull()
    {
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var store = new InMemoryDpopReplayStore(time, capacity: 2);

        Assert.That(await store.TryRecordAsync("a", TimeSpan.FromSeconds(60), default), Is.True);
        Assert.That(await store.TryRecordAsync("a", TimeSpan.FromSeconds(60), default), Is.False, "a replay");
        Assert.That(await store.TryRecordAsync("b", TimeSpan.FromSeconds(120), default), Is.True);
        Assert.That(await store.TryRecordAsync("c", TimeSpan.FromSeconds(60), default), Is.False, "full of live entries: refused, nothing forgotten early");
        time.Advance(TimeSpan.FromSeconds(61));
        Assert.That(await store.TryRecordAsync("c", TimeSpan.FromSeconds(60), default), Is.True, "a expired and made room");
        Assert.That(await store.TryRecordAsync("b", TimeSpan.FromSeconds(60), default), Is.False, "b is still live");
    }
}
