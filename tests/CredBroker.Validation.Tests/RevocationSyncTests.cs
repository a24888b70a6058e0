using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

public sealed class RevocationSyncTests
{
    private static readonly DateTimeOffset Later = DateTimeOffset.UtcNow.AddHours(1);

    [Test]
    public async Task Notices_ReachTheDenyList_AndTheCursorAdvances()
    {
        var feed = new ScriptedFeed();
        var deny = new DenyList();
        var sync = new RevocationSync(feed, deny, TimeProvider.System, Fast());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var run = sync.RunAsync(cts.Token);

        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-1", "agent-a", Later));
        await feed.SendAsync(new RevocationNotice("c2", "agent", null, "agent-b", DateTimeOffset.UtcNow));
        await feed.SendAsync(new RevocationNotice("c3", "heartbeat", null, null, DateTimeOffset.UtcNow));
        await Until(() => sync.Cursor == "c3");

        Assert.That(deny.IsRevoked("lease-1", "agent-a", DateTimeOffset.UtcNow), Is.True);
        Assert.That(deny.IsRevoked("other", "agent-b", DateTimeOffset.UtcNow.AddMinutes(-1)), Is.True, "quarantined agent, token issued before");
        Assert.That(sync.Applied, Is.EqualTo(2), "heartbeats are not revocations");
        await cts.CancelAsync();
        await run;
    }

    [Test]
    public async Task CurrentAsOf_IsTheLastHeartbeatsTime_NotTheTimeOfTheLastNotice()
    {
        var feed = new ScriptedFeed();
        var sync = new RevocationSync(feed, new DenyList(), TimeProvider.System, Fast());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var run = sync.RunAsync(cts.Token);
        Assert.That(sync.CurrentAsOf, Is.EqualTo(DateTimeOffset.MinValue), "no heartbeat yet: current as of nothing");

        var asOf = DateTimeOffset.UtcNow.AddSeconds(-3);
        await feed.SendAsync(new RevocationNotice("c1", "heartbeat", null, null, asOf));
        await feed.SendAsync(new RevocationNotice("c2", "lease", "lease-1", "agent-a", Later));
        await Until(() => sync.Cursor == "c2");

        // A revocation notice says nothing about what else the broker has: only a heartbeat moves CurrentAsOf, to its own time.
        Assert.That(sync.CurrentAsOf, Is.EqualTo(asOf));
        await cts.CancelAsync();
        await run;
    }

    [Test]
    public async Task BrokenStream_ResumesFromTheLastCursor_ExpiredCursor_StartsOver()
    {
        var feed = new ScriptedFeed();
        var sync = new RevocationSync(feed, new DenyList(), TimeProvider.System, Fast());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var run = sync.RunAsync(cts.Token);

        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-1", "agent-a", Later));
        await Until(() => sync.Cursor == "c1");
        feed.Break(new IOException("connection reset"));
        await Until(() => feed.Requests.Count >= 2);
        Assert.That(feed.Requests[1], Is.EqualTo("c1"), "resumed after the last applied notice");

        feed.Break(new RevocationCursorExpiredException("too old"));
        await Until(() => feed.Requests.Count >= 3);
        Assert.That(feed.Requests[2], Is.EqualTo(string.Empty), "an expired cursor replays everything retained");
        await cts.CancelAsync();
        await run;
    }

    [Test]
    public async Task CaughtUp_OnlyAfterAHeartbeat_Connected_OnlyWhileAStreamDelivers()
    {
        var feed = new ScriptedFeed();
        var sync = new RevocationSync(feed, new DenyList(), TimeProvider.System, Fast());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var run = sync.RunAsync(cts.Token);
        Assert.That(sync.IsCaughtUp, Is.False);
        Assert.That(sync.IsConnected, Is.False);

        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-1", "agent-a", Later));
        await Until(() => sync.IsConnected);
        Assert.That(sync.IsCaughtUp, Is.False, "replaying: the broker has not said it is done");

        await feed.HeartbeatAsync("c2");
        await Until(() => sync.IsCaughtUp);

        feed.Break(new IOException("connection reset"));
        await Until(() => !sync.IsConnected);
        Assert.That(sync.IsCaughtUp, Is.True, "what was applied stays applied; resuming from the cursor misses nothing");

        feed.Break(new RevocationCursorExpiredException("too old"));
        await Until(() => !sync.IsCaughtUp);
        await feed.HeartbeatAsync("c3");
        await Until(() => sync.IsCaughtUp && sync.IsConnected);
        await cts.CancelAsync();
        await run;
    }

    [Test]
    public async Task SilentFeed_FailsClosedAfterTheOutageBound_OrOpenWhenConfigured()
    {
        var options = Fast() with { MaxOutage = TimeSpan.FromMilliseconds(300) };
        var closed = new RevocationSync(new ScriptedFeed(), new DenyList(), TimeProvider.System, options);
        var open = new RevocationSync(new ScriptedFeed(), new DenyList(), TimeProvider.System, options with { FailOpen = true });
        Assert.That(closed.IsAvailable, Is.True);

        await Task.Delay(500);

        Assert.That(closed.IsAvailable, Is.False);
        Assert.That(open.IsAvailable, Is.True);
        using var tokens = new TestTokens();
        var validator = tokens.Validator(revocation: closed);
        Assert.That(validator.Validate(tokens.Mint().AccessToken, tokens.Now).Error, Is.EqualTo(TokenErrors.RevocationUnavailable));
    }

    /// <summary>Issue 15 item 12: an empty deny list right after start is not trusted; the refusal says why.</summary>
    [Test]
    public async Task NotCaughtUp_RefusesTokensAsRevocationsNotSynced_UntilAHeartbeat_AndAgainWhileReplayingAfterAnExpiredCursor()
    {
        var feed = new ScriptedFeed();
        var sync = new RevocationSync(feed, new DenyList(), TimeProvider.System, Fast());
        using var tokens = new TestTokens();
        var validator = tokens.Validator(revocation: sync);
        var token = tokens.Mint(leaseId: "lease-9").AccessToken;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var run = sync.RunAsync(cts.Token);

        Assert.That(validator.Validate(token, tokens.Now).Error, Is.EqualTo(TokenErrors.RevocationsNotSynced), "before anything arrived");
        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-1", "agent-a", Later));
        await Until(() => sync.Cursor == "c1");
        Assert.That(validator.Validate(token, tokens.Now).Error, Is.EqualTo(TokenErrors.RevocationsNotSynced), "replaying: not caught up yet");

        await feed.HeartbeatAsync("c2");
        await Until(() => sync.IsSynced);
        Assert.That(validator.Validate(token, tokens.Now).IsValid, Is.True);

        feed.Break(new RevocationCursorExpiredException("too old"));
        await Until(() => !sync.IsSynced);
        Assert.That(validator.Validate(token, tokens.Now).Error, Is.EqualTo(TokenErrors.RevocationsNotSynced), "resyncing after an expired cursor");
        await feed.HeartbeatAsync("c3");
        await Until(() => sync.IsSynced);
        Assert.That(validator.Validate(token, tokens.Now).IsValid, Is.True);
        await cts.CancelAsync();
        await run;
    }

    [Test]
    public void AcceptBeforeCaughtUp_OptsOut()
    {
        var sync = new RevocationSync(new ScriptedFeed(), new DenyList(), TimeProvider.System, Fast() with { AcceptBeforeCaughtUp = true });
        using var tokens = new TestTokens();

        Assert.That(sync.IsCaughtUp, Is.False);
        Assert.That(tokens.Validator(revocation: sync).Validate(tokens.Mint().AccessToken, tokens.Now).IsValid, Is.True);
    }

    private static RevocationSyncOptions Fast() => new() { MinBackoff = TimeSpan.FromMilliseconds(5), MaxBackoff = TimeSpan.FromMilliseconds(20) };

    private static async Task Until(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.That(condition(), Is.True, "condition not reached in 5 s");
    }
}
