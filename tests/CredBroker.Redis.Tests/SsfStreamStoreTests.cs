using CredBroker.Core.Signals;
using CredBroker.Core.Signals.InMemory;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>The SSF stream store contract, on a real Redis (RESP2 and RESP3) and in memory.</summary>
[TestFixture("redis", "resp2")]
[TestFixture("redis", "resp3")]
[TestFixture("memory", "")]
public sealed class SsfStreamStoreTests(string kind, string protocol)
{
    private RedisServer? _redis;
    private RedisLeaseStore? _leases;
    private ISsfStreamStore _store = null!;

    [SetUp]
    public void Open()
    {
        if (kind == "redis")
        {
            _redis = RedisServer.Start();
            _leases = RedisLeaseStore.Connect(_redis.ConnectionString + ",protocol=" + protocol);
            _store = _leases.SsfStreams();
        }
        else
        {
            _store = new InMemorySsfStreamStore();
        }
    }

    [TearDown]
    public void Close()
    {
        _leases?.Dispose();
        _redis?.Dispose();
    }

    private static SsfStream Stream(string id) => new()
    {
        StreamId = id,
        Receiver = "r",
        Audience = "api",
        DeliveryMethod = SsfNames.PushDelivery,
        EndpointUrl = "https://api.example/events",
        AuthorizationHeader = "Bearer x",
        EventsRequested = [SsfNames.SessionRevoked],
        Cursor = "v1.cursor",
        AckedAhead = ["s.1.2-0"],
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_000),
    };

    [Test]
    public async Task Create_RoundTrips_EveryMember_AndIsListed()
    {
        var created = await _store.TrySaveAsync(Stream("a"), 0, default);
        var read = await _store.GetAsync("a", default);
        var list = await _store.ListAsync(default);

        Assert.That(created, Is.True);
        Assert.That(read, Is.EqualTo(Stream("a") with { Version = 1, EventsRequested = read!.EventsRequested, AckedAhead = read.AckedAhead }));
        Assert.That(read.EventsRequested, Is.EqualTo(new[] { SsfNames.SessionRevoked }));
        Assert.That(read.AckedAhead, Is.EqualTo(new[] { "s.1.2-0" }));
        Assert.That(list.Select(s => s.StreamId), Is.EqualTo(new[] { "a" }));
        Assert.That(await _store.GetAsync("missing", default), Is.Null);
    }

    [Test]
    public async Task Save_IsCompareAndSetOnTheVersion()
    {
        await _store.TrySaveAsync(Stream("a"), 0, default);

        var duplicate = await _store.TrySaveAsync(Stream("a"), 0, default);
        var update = await _store.TrySaveAsync(Stream("a") with { Cursor = "v1.next" }, 1, default);
        var stale = await _store.TrySaveAsync(Stream("a") with { Cursor = "v1.stale" }, 1, default);
        var read = await _store.GetAsync("a", default);

        Assert.That((duplicate, update, stale), Is.EqualTo((false, true, false)));
        Assert.That((read!.Cursor, read.Version), Is.EqualTo(("v1.next", 2L)));
    }

    [Test]
    public async Task Delete_RemovesTheStream_AndAStaleWriterCannotBringItBack()
    {
        await _store.TrySaveAsync(Stream("a"), 0, default);

        var deleted = await _store.DeleteAsync("a", default);
        var again = await _store.DeleteAsync("a", default);
        var resurrected = await _store.TrySaveAsync(Stream("a"), 1, default);

        Assert.That((deleted, again, resurrected), Is.EqualTo((true, false, false)));
        Assert.That(await _store.GetAsync("a", default), Is.Null);
        Assert.That(await _store.ListAsync(default), Is.Empty);
    }

    [Test]
    public async Task PushClaim_IsHeldByOneOwner_UntilItLapses()
    {
        var a = await _store.TryClaimPushAsync("a", "replica-1", TimeSpan.FromMilliseconds(300), default);
        var b = await _store.TryClaimPushAsync("a", "replica-2", TimeSpan.FromMilliseconds(300), default);
        var renewed = await _store.TryClaimPushAsync("a", "replica-1", TimeSpan.FromMilliseconds(300), default);
        var other = await _store.TryClaimPushAsync("b", "replica-2", TimeSpan.FromMilliseconds(300), default);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var taken = false;
        while (!taken && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            taken = await _store.TryClaimPushAsync("a", "replica-2", TimeSpan.FromSeconds(10), default);
        }

        Assert.That((a, b, renewed, other), Is.EqualTo((true, false, true, true)));
        Assert.That(taken, Is.True, "a lapsed claim can be taken by another replica");
    }
}
