using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>Revocation and the revocation feed.</summary>
public abstract partial class LeaseStoreContract
{
    [Test]
    public async Task Revoke_ActiveLease_RevokesNowWithOneLeaseEvent()
    {
        var agent = NewAgent();
        var lease = NewLease(agent);
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var result = await Store.RevokeAsync(lease.LeaseId, "suspicious", "ops@example.com", Now.AddSeconds(3), 0, default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That((result.Lease!.State, result.Lease.EndedAt, result.Lease.Generation), Is.EqualTo((LeaseState.Revoked, (DateTimeOffset?)Now.AddSeconds(3), 1L)));
        Assert.That((await ClaimAll(Now.AddHours(2))).Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId));
        var e = (await ReadAll(tail)).Events.Single(x => x.AgentId == agent);
        Assert.That(e, Is.EqualTo(new RevocationEvent(LeaseIds.ShardOf(agent), e.Position, RevocationKind.Lease, lease.LeaseId, agent, lease.TaskId,
            RevocationCause.Revoked, "suspicious", "ops@example.com", Now.AddSeconds(3), lease.Deadline)));
    }

    [Test]
    public async Task Revoke_ExpiredOrCompletedLease_IsNotApplicable_AndAppendsNothing()
    {
        var agent = NewAgent();
        var completed = NewLease(agent);
        var swept = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        var timedOut = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        foreach (var l in new[] { completed, swept, timedOut })
        {
            await Open(l);
        }

        await Complete(completed.LeaseId, Now);
        await Claim(LeaseIds.ShardOf(agent), Now.AddSeconds(2), 1000);
        var unswept = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        await Open(unswept);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var a = await Revoke(completed.LeaseId, Now.AddSeconds(5));
        var b = await Revoke(swept.LeaseId, Now.AddSeconds(5));
        var c = await Revoke(unswept.LeaseId, Now.AddSeconds(5));

        Assert.That((a.Outcome, a.Lease!.State), Is.EqualTo((TransitionOutcome.NotApplicable, LeaseState.Completed)));
        Assert.That((b.Outcome, b.Lease!.State), Is.EqualTo((TransitionOutcome.NotApplicable, LeaseState.Expired)));
        Assert.That((c.Outcome, c.Lease!.State, c.Lease.EndedAt), Is.EqualTo((TransitionOutcome.NotApplicable, LeaseState.Expired, (DateTimeOffset?)unswept.Deadline)),
            "a lease past its deadline is expired, not revoked");
        Assert.That((await ReadAll(tail)).Events.Where(e => e.AgentId == agent), Is.Empty);
    }

    [Test]
    public async Task Feed_ReturnsEventsInPerShardOrder_AndResumesWithExactlyTheNewOnes()
    {
        var agents = Enumerable.Range(0, 6).Select(_ => NewAgent()).ToList();
        var leases = agents.SelectMany(a => Enumerable.Range(0, 3).Select(_ => NewLease(a))).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        var tail = await Store.CurrentRevocationCursorAsync(default);
        foreach (var l in leases.Take(10))
        {
            await Revoke(l.LeaseId, Now);
        }

        var first = await ReadAll(tail, pageSize: 3);
        foreach (var l in leases.Skip(10))
        {
            await Complete(l.LeaseId, Now);
        }

        var second = await ReadAll(first.Cursor, pageSize: 4);
        var nothingNew = await Store.ReadRevocationsAsync(second.Cursor, 100, default);

        var ids = leases.Select(l => l.LeaseId).ToList();
        Assert.That(first.Events.Select(e => e.LeaseId).Intersect(ids), Is.EquivalentTo(ids.Take(10)));
        Assert.That(second.Events.Select(e => e.LeaseId).Intersect(ids), Is.EquivalentTo(ids.Skip(10)));
        Assert.That(first.Events.Concat(second.Events).Select(e => (e.Shard, e.Position)), Is.Unique);
        foreach (var events in new[] { first.Events, second.Events })
        {
            foreach (var shard in events.GroupBy(e => e.Shard))
            {
                Assert.That(shard.Select(e => e.Position), Is.Ordered, "per-shard order");
                var expected = ids.Where(id => shard.Any(e => e.LeaseId == id)).ToList();
                Assert.That(shard.Select(e => e.LeaseId).Where(id => expected.Contains(id!)), Is.EqualTo(expected), "in the order they happened");
            }
        }

        Assert.That(nothingNew.Events, Is.Empty);
        Assert.That(nothingNew.Cursor, Is.EqualTo(second.Cursor));
    }

    [Test]
    public async Task Feed_FromNullCursor_StartsAtTheOldestRetainedEvent()
    {
        var lease = NewLease(NewAgent());
        await Open(lease);
        await Revoke(lease.LeaseId, Now);

        var all = await ReadAll(null, pageSize: 1000);

        Assert.That(all.Events.Select(e => e.LeaseId), Does.Contain(lease.LeaseId));
        Assert.That(all.Cursor, Is.EqualTo(await Store.CurrentRevocationCursorAsync(default)));
    }

    [Test]
    public void Cursor_RoundTripsAsOpaqueAscii()
    {
        var cursor = new RevocationCursor(Enumerable.Range(0, LeaseIds.ShardCount).Select(i => new LogPosition((ulong)i * 1_700_000_000_000, (ulong)i)).ToList())
            .With(3, new LogPosition(ulong.MaxValue, ulong.MaxValue));

        var text = cursor.ToString();

        Assert.That(text.All(c => c is > ' ' and < (char)127), Is.True);
        Assert.That(RevocationCursor.TryParse(text, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(cursor));
        Assert.That(parsed.ToString(), Is.EqualTo(text));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("v1.")]
    [TestCase("garbage")]
    [TestCase("v1.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.0-0.")]
    public void Cursor_Garbage_IsRejected(string? text) =>
        Assert.That(RevocationCursor.TryParse(text, out _), Is.False);

    /// <summary>A cursor that is valid except for its first position (or its version, or a trailing space).</summary>
    [TestCase("v2.", "0-0", "")]
    [TestCase("v1.", "00-0", "")]
    [TestCase("v1.", "0-01", "")]
    [TestCase("v1.", "-1-0", "")]
    [TestCase("v1.", "+1-0", "")]
    [TestCase("v1.", "1-", "")]
    [TestCase("v1.", "-", "")]
    [TestCase("v1.", "1-0-0", "")]
    [TestCase("v1.", " 1-0", "")]
    [TestCase("v1.", "18446744073709551616-0", "")]
    [TestCase("v1.", "\u0661-0", "")]
    [TestCase("V1.", "0-0", "")]
    [TestCase("v1.", "0-0", " ")]
    public void Cursor_OneBadPart_IsRejected(string prefix, string first, string suffix)
    {
        var rest = "." + string.Join('.', Enumerable.Repeat("7-1", LeaseIds.ShardCount - 1));
        Assert.That(RevocationCursor.TryParse("v1.5-0" + rest, out _), Is.True, "the rest is valid");
        var text = prefix + first + rest + suffix;
        Assert.That(RevocationCursor.TryParse(text, out _), Is.False, text);
    }

    [TestCase(0)]
    [TestCase(15)]
    [TestCase(17)]
    public void Cursor_WithAWrongNumberOfShards_IsRejected(int shards) =>
        Assert.That(RevocationCursor.TryParse("v1." + string.Join('.', Enumerable.Repeat("1-0", shards)), out _), Is.False);

    /// <summary>
    /// Issue 15 item 12: events are kept by time (at least the longest token lifetime plus skew), never
    /// by count, and a cursor before dropped history is told so (CURSOR_EXPIRED on the wire).
    /// Redis measures the retention on its own clock, the in-memory store on the events' times: the
    /// test lets real time pass and appends with a matching later time.
    /// </summary>
    [Test]
    public async Task Feed_KeepsEventsByTime_NotByCount_AndACursorBeforeDroppedHistory_IsTooOld()
    {
        var retention = TimeSpan.FromSeconds(1);
        var small = CreateStore(new LeaseStoreOptions { RevocationRetention = retention });
        try
        {
            var agent = NewAgent();
            var other = Enumerable.Range(0, 100).Select(_ => NewAgent()).First(a => LeaseIds.ShardOf(a) != LeaseIds.ShardOf(agent));
            var before = await small.CurrentRevocationCursorAsync(default);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            async Task RevokeOne(string who, DateTimeOffset at)
            {
                var lease = NewLease(who, at: at);
                await small.OpenAsync(lease, LeaseQuota.Unlimited, default);
                await small.RevokeAsync(lease.LeaseId, "bulk", "ops", at, null, default);
            }

            for (var i = 0; i < 300; i++)
            {
                await RevokeOne(agent, Now);
            }

            await RevokeOne(other, Now);
            var afterOld = await small.CurrentRevocationCursorAsync(default);
            var all = await small.ReadRevocationsAsync(before, 1000, default);
            Assert.That(all.CursorTooOld, Is.False, "within the retention nothing is dropped, however many");
            Assert.That(all.Events.Count(e => e.AgentId == agent), Is.EqualTo(300));

            // Past the retention (on both clocks), the next append in the agent's shard drops the old events there.
            while (clock.Elapsed < retention + TimeSpan.FromMilliseconds(500))
            {
                await Task.Delay(50);
            }

            var later = Now + clock.Elapsed;
            await RevokeOne(agent, later);

            var stale = await small.ReadRevocationsAsync(before, 1000, default);
            var fromAfterOld = await small.ReadRevocationsAsync(afterOld, 1000, default);
            var fromOldest = await small.ReadRevocationsAsync(null, 1000, default);

            Assert.That(stale.CursorTooOld, Is.True, "events after this cursor were dropped");
            Assert.That(stale.Events.Count(e => e.AgentId == agent), Is.EqualTo(1), "the retained one is still delivered");
            Assert.That(fromAfterOld.CursorTooOld, Is.False, "a cursor at the newest dropped event missed nothing");
            Assert.That(fromAfterOld.Events.Select(e => e.AgentId), Is.EqualTo(new[] { agent }));
            Assert.That(fromOldest.CursorTooOld, Is.False, "no cursor: start from what is retained");
            Assert.That(fromOldest.Events.Count(e => e.AgentId == agent), Is.EqualTo(1));
            Assert.That(fromOldest.Events.Count(e => e.AgentId == other), Is.EqualTo(1), "a shard without appends keeps its events");
            Assert.That((await small.ReadRevocationsAsync(stale.Cursor, 1000, default)).CursorTooOld, Is.False, "caught up again");
        }
        finally
        {
            (small as IDisposable)?.Dispose();
        }
    }

    [Test]
    public void Options_RetentionOutOfRange_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => (CreateStore(new LeaseStoreOptions { RevocationRetention = TimeSpan.FromMilliseconds(999) }) as IDisposable)?.Dispose());
        Assert.Throws<ArgumentOutOfRangeException>(() => (CreateStore(new LeaseStoreOptions { RevocationRetention = TimeSpan.FromDays(31) }) as IDisposable)?.Dispose());
    }
}
