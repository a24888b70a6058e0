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
        await Store.ClaimExpiredAsync(LeaseIds.ShardOf(agent), Now.AddSeconds(2), 1000, default);
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

    [Test]
    public async Task Feed_TrimmedPastTheCursor_SaysCursorTooOld()
    {
        var small = CreateStore(new LeaseStoreOptions { RevocationLogMaxLength = 10 });
        try
        {
            var agent = NewAgent();
            var before = await small.CurrentRevocationCursorAsync(default);
            for (var i = 0; i < 30; i++)
            {
                var lease = NewLease(agent);
                await small.OpenAsync(lease, LeaseQuota.Unlimited, default);
                await small.RevokeAsync(lease.LeaseId, "bulk", "ops", Now, null, default);
            }

            var stale = await small.ReadRevocationsAsync(before, 1000, default);
            var fromTail = await small.ReadRevocationsAsync(await small.CurrentRevocationCursorAsync(default), 1000, default);
            var fromOldest = await small.ReadRevocationsAsync(null, 1000, default);

            Assert.That(stale.CursorTooOld, Is.True);
            Assert.That(stale.Events.Count(e => e.AgentId == agent), Is.InRange(10, 29), "the retained ones are still delivered");
            Assert.That(fromTail.CursorTooOld, Is.False);
            Assert.That(fromOldest.CursorTooOld, Is.False, "no cursor: start from what is retained");
            Assert.That((await small.ReadRevocationsAsync(stale.Cursor, 1000, default)).CursorTooOld, Is.False, "caught up again");

            // A reader that starts without a cursor and pages slowly over several trimmed shards never
            // gets "too old" (ReadAll asserts it) and sees every retained event once.
            var other = Enumerable.Range(0, 100).Select(_ => NewAgent()).First(a => LeaseIds.ShardOf(a) != LeaseIds.ShardOf(agent));
            for (var i = 0; i < 15; i++)
            {
                var lease = NewLease(other);
                await small.OpenAsync(lease, LeaseQuota.Unlimited, default);
                await small.RevokeAsync(lease.LeaseId, "bulk", "ops", Now, null, default);
            }

            var slow = await ReadAll(null, pageSize: 3, store: small);
            Assert.That(slow.Events.Select(e => (e.Shard, e.Position)), Is.Unique);
            Assert.That((slow.Events.Count(e => e.AgentId == agent), slow.Events.Count(e => e.AgentId == other)), Is.EqualTo((10, 10)));
        }
        finally
        {
            (small as IDisposable)?.Dispose();
        }
    }
}
