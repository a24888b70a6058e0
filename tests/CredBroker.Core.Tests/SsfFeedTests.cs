using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Signals;
using CredBroker.Core.Signals.InMemory;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Tests;

/// <summary>A stream's view of the revocation log: stable jtis, acknowledgements in and out of order, the SET's shape.</summary>
[TestFixture]
public sealed class SsfFeedTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    private InMemoryLeaseStore _log = null!;

    [SetUp]
    public void CreateLog() => _log = new InMemoryLeaseStore();

    private static SsfStream NewStream() => new()
    {
        StreamId = "s1",
        Receiver = "r",
        Audience = "api",
        DeliveryMethod = SsfNames.PollDelivery,
        EventsRequested = [SsfNames.SessionRevoked],
        Version = 1,
    };

    private async Task<string> RevokeOneAsync(int minute)
    {
        var agent = "agent-" + Guid.NewGuid().ToString("N")[..8];
        var task = "task-" + Guid.NewGuid().ToString("N");
        var lease = new Lease
        {
            LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "o@example.com", Purpose = "p", Audience = "api",
            Scopes = ["a:read"], State = LeaseState.Active, CreatedAt = Now, Deadline = Now.AddMinutes(30), MaxDeadline = Now.AddHours(1),
        };
        await _log.OpenAsync(lease, LeaseQuota.Unlimited, default);
        await _log.RevokeAsync(lease.LeaseId, "test", "operator", Now.AddMinutes(minute), null, default);
        return lease.LeaseId;
    }

    [Test]
    public async Task Read_IsRepeatable_WithStableJtis_UntilAcknowledged()
    {
        await RevokeOneAsync(1);
        await RevokeOneAsync(2);
        var stream = NewStream();

        var first = await SsfFeed.ReadAsync(_log, stream, 10, default);
        var second = await SsfFeed.ReadAsync(_log, stream, 10, default);
        var acked = await SsfFeed.AcknowledgeAsync(_log, stream, first.Events.Select(e => e.Jti), default);
        var after = await SsfFeed.ReadAsync(_log, acked, 10, default);

        Assert.That(first.Events.Select(e => e.Jti), Is.EqualTo(second.Events.Select(e => e.Jti)));
        Assert.That(first.Events, Has.Count.EqualTo(2));
        Assert.That(first.Events.Select(e => e.Jti), Has.All.StartWith("s1."));
        Assert.That(after.Events, Is.Empty);
        Assert.That(acked.AckedAhead, Is.Empty);
    }

    [Test]
    public async Task AckOutOfOrder_IsHeldAhead_NotRedelivered_AndTheCursorMovesWhenTheGapCloses()
    {
        var leases = new[] { await RevokeOneAsync(1), await RevokeOneAsync(2), await RevokeOneAsync(3) };
        var stream = NewStream();
        var all = (await SsfFeed.ReadAsync(_log, stream, 10, default)).Events;
        Assert.That(all.Select(e => e.Event.LeaseId), Is.EqualTo(leases));

        var secondAcked = await SsfFeed.AcknowledgeAsync(_log, stream, [all[1].Jti, "other-stream.0.1-0", "s1.garbage"], default);
        var remaining = await SsfFeed.ReadAsync(_log, secondAcked, 10, default);
        var firstAcked = await SsfFeed.AcknowledgeAsync(_log, secondAcked, [all[0].Jti], default);
        var last = await SsfFeed.ReadAsync(_log, firstAcked, 10, default);

        Assert.That(SsfFeed.CursorOf(secondAcked), Is.EqualTo(SsfFeed.CursorOf(stream)), "a gap before the acknowledged event keeps the cursor");
        Assert.That(secondAcked.AckedAhead, Is.EqualTo(new[] { all[1].Jti }), "other streams' and malformed jtis are ignored");
        Assert.That(remaining.Events.Select(e => e.Jti), Is.EqualTo(new[] { all[0].Jti, all[2].Jti }));
        Assert.That(firstAcked.AckedAhead, Is.Empty);
        Assert.That(last.Events.Select(e => e.Jti), Is.EqualTo(new[] { all[2].Jti }));
    }

    [Test]
    public async Task ReadRespectsMax_AndSaysMoreAvailable()
    {
        for (var i = 0; i < 3; i++)
        {
            await RevokeOneAsync(i);
        }

        var page = await SsfFeed.ReadAsync(_log, NewStream(), 2, default);
        var none = await SsfFeed.ReadAsync(_log, NewStream() with { EventsRequested = ["https://example.com/other-event"] }, 2, default);

        Assert.That(page.Events, Has.Count.EqualTo(2));
        Assert.That(page.MoreAvailable, Is.True);
        Assert.That(none.Events, Is.Empty, "a stream that did not request session-revoked gets none");
    }

    [Test]
    public async Task Set_IsSignedSecEventJwt_WithComplexSubjectAndSessionRevokedEvent()
    {
        var leaseId = await RevokeOneAsync(1);
        var pending = (await SsfFeed.ReadAsync(_log, NewStream(), 1, default)).Events.Single();
        using var key = SigningKey.Generate();

        var set = SecurityEventTokens.Create(key, "https://broker.example", "api", pending.Jti, pending.Event, Now);

        var parts = set.Split('.');
        Assert.That(key.Verify(System.Text.Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64Url.TryDecode(parts[2])), Is.True);
        using var header = System.Text.Json.JsonDocument.Parse(Base64Url.TryDecode(parts[0]));
        using var payload = System.Text.Json.JsonDocument.Parse(Base64Url.TryDecode(parts[1]));
        Assert.That(header.RootElement.GetProperty("typ").GetString(), Is.EqualTo("secevent+jwt"));
        Assert.That(header.RootElement.GetProperty("kid").GetString(), Is.EqualTo(key.Kid));
        var p = payload.RootElement;
        Assert.That(p.GetProperty("jti").GetString(), Is.EqualTo(pending.Jti));
        Assert.That(p.GetProperty("aud").GetString(), Is.EqualTo("api"));
        Assert.That(p.GetProperty("sub_id").GetProperty("session").GetProperty("id").GetString(), Is.EqualTo(leaseId));
        var e = p.GetProperty("events").GetProperty(SsfNames.SessionRevoked);
        Assert.That(e.GetProperty("lease_id").GetString(), Is.EqualTo(leaseId));
        Assert.That(e.GetProperty("event_timestamp").GetInt64(), Is.EqualTo(Now.AddMinutes(1).ToUnixTimeSeconds()));
        Assert.That(e.GetProperty("deny_until").GetInt64(), Is.GreaterThanOrEqualTo(Now.AddMinutes(30).ToUnixTimeSeconds()));
    }

    [Test]
    public async Task InMemoryStreamStore_IsCompareAndSet_AndPushClaimsAreExclusive()
    {
        var store = new InMemorySsfStreamStore();
        var stream = NewStream() with { Version = 0 };

        var created = await store.TrySaveAsync(stream, 0, default);
        var again = await store.TrySaveAsync(stream, 0, default);
        var updated = await store.TrySaveAsync(stream with { Description = "x" }, 1, default);
        var stale = await store.TrySaveAsync(stream with { Description = "y" }, 1, default);
        var claimA = await store.TryClaimPushAsync("s1", "a", TimeSpan.FromMinutes(1), default);
        var claimB = await store.TryClaimPushAsync("s1", "b", TimeSpan.FromMinutes(1), default);
        var renewA = await store.TryClaimPushAsync("s1", "a", TimeSpan.FromMinutes(1), default);

        Assert.That((created, again, updated, stale), Is.EqualTo((true, false, true, false)));
        Assert.That((await store.GetAsync("s1", default))!.Description, Is.EqualTo("x"));
        Assert.That((claimA, claimB, renewA), Is.EqualTo((true, false, true)));
    }
}
