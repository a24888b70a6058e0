using CredBroker.Core.Leases;
using CredBroker.Server.Services;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Tests;

/// <summary>The log of partial lists: one warning when a shard is first found unreachable, not one per call or page.</summary>
[TestFixture]
public sealed class PartialListingsTests
{
    private sealed class Recorder : ILogger<PartialListings>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }

    private static LeasePage Page(string? next, params int[] unreachable) => new([], next) { UnreachableShards = unreachable };

    [Test]
    public void WarnsOncePerNewlyUnreachableShard_NotPerCallOrPage_AndSaysWhenListsAreCompleteAgain()
    {
        var recorder = new Recorder();
        var partial = new PartialListings(recorder);

        Assert.That(partial.Observe("ListLeases", Page(null), wholeListing: true), Is.Empty);
        partial.Observe("ListLeases", Page(null, 1, 5), wholeListing: true);
        partial.Observe("ListApprovals", Page(null, 1, 5), wholeListing: true);
        partial.Observe("ListLeases", Page("p2.0002.3.0.l03_aaaaaaaaaaaaaaaaaaaaaaaaaa", 1), wholeListing: true);
        partial.Observe("ListLeases", Page(null), wholeListing: false);
        Assert.That(recorder.Entries, Has.Count.EqualTo(1), "one warning for the outage; a first page naming part of it, or a one-agent list, changes nothing");
        Assert.That(recorder.Entries[0], Is.EqualTo((LogLevel.Warning,
            "ListLeases answered with partial results: lease shards 1,5 could not be read (a lost Redis master); their leases and approvals are missing from the list")));

        partial.Observe("ListLeases", Page(null, 1, 5, 9), wholeListing: true);
        Assert.That(recorder.Entries, Has.Count.EqualTo(2), "another master lost");
        Assert.That(recorder.Entries[1].Message, Does.Contain("lease shards 1,5,9"));

        partial.Observe("ListApprovals", Page(null), wholeListing: true);
        Assert.That(recorder.Entries[2], Is.EqualTo((LogLevel.Information, "ListApprovals reads every lease shard again: listings are complete")));
        partial.Observe("ListApprovals", Page(null), wholeListing: true);
        partial.Observe("ListLeases", Page(null, 5), wholeListing: true);
        Assert.That(recorder.Entries, Has.Count.EqualTo(4), "lost again after it was back: a new warning");
    }
}
