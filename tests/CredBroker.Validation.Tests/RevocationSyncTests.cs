using System.Runtime.CompilerServices;
using System.Threading.Channels;
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

    private static RevocationSyncOptions Fast() => new() { MinBackoff = TimeSpan.FromMilliseconds(5), MaxBackoff = TimeSpan.FromMilliseconds(20) };

    private static async Task Until(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.That(condition(), Is.True, "condition not reached in 5 s");
    }

    /// <summary>A feed the test drives: each WatchAsync call is recorded; notices and breaks are pushed.</summary>
    private sealed class ScriptedFeed : IRevocationFeed
    {
        private Channel<object> _current = Channel.CreateUnbounded<object>();

        public List<string> Requests { get; } = [];

        public ValueTask SendAsync(RevocationNotice notice) => _current.Writer.WriteAsync(notice);

        public void Break(Exception e) => _current.Writer.TryWrite(e);

        public async IAsyncEnumerable<RevocationNotice> WatchAsync(string cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            lock (Requests)
            {
                Requests.Add(cursor);
            }

            await foreach (var item in _current.Reader.ReadAllAsync(cancellationToken))
            {
                if (item is Exception e)
                {
                    throw e;
                }

                yield return (RevocationNotice)item;
            }
        }
    }
}
