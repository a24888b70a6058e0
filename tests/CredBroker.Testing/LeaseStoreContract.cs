using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>
/// The lease store contract, written once and run against every store (in-memory and Redis).
/// Stores may be shared between tests (one Redis per fixture), so every test uses its own agents
/// and reads the revocation feed from the tail it took first. Split by topic into partial files.
/// </summary>
public abstract partial class LeaseStoreContract
{
    // Redis keeps milliseconds: start on a whole millisecond so round trips compare equal.
    protected static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    protected abstract ILeaseStore Store { get; }

    /// <summary>Another store with other options: in memory a fresh one, on Redis one on the same server (disposed by the test when disposable).</summary>
    protected abstract ILeaseStore CreateStore(LeaseStoreOptions options);

    protected static string NewAgent() => "agent-" + Guid.NewGuid().ToString("N")[..12];

    protected static Lease NewLease(string agent = "agent-a", string? task = null, TimeSpan? ttl = null, string owner = "owner@example.com", DateTimeOffset? at = null)
    {
        var created = at ?? Now;
        task ??= "task-" + Guid.NewGuid().ToString("N");
        return new Lease
        {
            LeaseId = LeaseIds.For(agent, task),
            AgentId = agent,
            TaskId = task,
            Owner = owner,
            Purpose = "contract test",
            Audience = "api",
            Scopes = ["a:read", "b:write"],
            State = LeaseState.Active,
            CreatedAt = created,
            Deadline = created + (ttl ?? TimeSpan.FromMinutes(10)),
            MaxDeadline = created + TimeSpan.FromHours(1),
        };
    }

    protected Task<LeaseOpenResult> Open(Lease lease, LeaseQuota? quota = null) => Store.OpenAsync(lease, quota ?? LeaseQuota.Unlimited, default);

    protected Task<LeaseTransition> Complete(string leaseId, DateTimeOffset at, long? generation = null) => Store.CompleteAsync(leaseId, null, at, generation, default);

    protected Task<LeaseTransition> Renew(string leaseId, DateTimeOffset to, DateTimeOffset at, long? generation = null) => Store.RenewAsync(leaseId, to, at, generation, default);

    protected Task<LeaseTransition> Revoke(string leaseId, DateTimeOffset at, long? generation = null) =>
        Store.RevokeAsync(leaseId, "operator says so", "ops@example.com", at, generation, default);

    /// <summary>One claim, confirmed at once (as a sweeper does after recording it): tests sharing the store never see it again.</summary>
    protected async Task<IReadOnlyList<ExpiredLease>> Claim(int shard, DateTimeOffset at, int limit)
    {
        var batch = await Store.ClaimExpiredAsync(shard, at, limit, default);
        await Store.ConfirmExpiredAsync(shard, batch, default);
        return batch;
    }

    /// <summary>Claims everything due at <paramref name="at"/> on every shard (a sweeper pass).</summary>
    protected async Task<List<ExpiredLease>> ClaimAll(DateTimeOffset at, ILeaseStore? store = null)
    {
        var claimed = new List<ExpiredLease>();
        for (var shard = 0; shard < LeaseIds.ShardCount; shard++)
        {
            IReadOnlyList<ExpiredLease> batch;
            do
            {
                batch = await (store ?? Store).ClaimExpiredAsync(shard, at, 100, default);
                await (store ?? Store).ConfirmExpiredAsync(shard, batch, default);
                claimed.AddRange(batch);
            }
            while (batch.Count > 0);
        }

        return claimed;
    }

    /// <summary>Every event after <paramref name="from"/>, page by page.</summary>
    protected async Task<(List<RevocationEvent> Events, RevocationCursor Cursor)> ReadAll(RevocationCursor? from, int pageSize = 100, ILeaseStore? store = null)
    {
        var events = new List<RevocationEvent>();
        var cursor = from;
        while (true)
        {
            var page = await (store ?? Store).ReadRevocationsAsync(cursor, pageSize, default);
            Assert.That(page.CursorTooOld, Is.False);
            events.AddRange(page.Events);
            cursor = page.Cursor;
            if (page.Events.Count == 0)
            {
                return (events, cursor);
            }
        }
    }

    [Test]
    public async Task Open_NewTask_CreatesTheLeaseWithEveryField()
    {
        var lease = NewLease();

        var result = await Open(lease);
        var read = await Store.GetAsync(lease.LeaseId, default);

        Assert.That(result.Created, Is.True);
        Assert.That(result.Refusal, Is.EqualTo(OpenRefusal.None));
        Assert.That(read, Is.Not.Null);
        Assert.That(read! with { Scopes = lease.Scopes }, Is.EqualTo(lease));
        Assert.That(read.Scopes, Is.EqualTo(lease.Scopes));
    }

    [Test]
    public async Task Open_SameAgentAndTask_ReturnsTheExistingLeaseAndWritesNothing()
    {
        var first = NewLease(task: "same-task-" + Guid.NewGuid());
        await Open(first);
        var second = NewLease(task: first.TaskId, ttl: TimeSpan.FromMinutes(20)) with { Purpose = "a different request" };

        var result = await Open(second);

        Assert.That(result.Created, Is.False);
        Assert.That(result.Lease!.LeaseId, Is.EqualTo(first.LeaseId));
        Assert.That((result.Lease.Purpose, result.Lease.Deadline), Is.EqualTo((first.Purpose, first.Deadline)), "the first lease is returned as stored");
        Assert.That((await Store.GetAsync(first.LeaseId, default))!.Purpose, Is.EqualTo(first.Purpose), "nothing was overwritten");
    }

    [Test]
    public void Open_ALeaseIdThatIsNotItsTasksId_IsRefused()
    {
        var lease = NewLease() with { LeaseId = LeaseIds.For("agent-a", "some-other-task") };

        Assert.ThrowsAsync<ArgumentException>(() => Open(lease));
    }

    [Test]
    public void LeaseIds_OneTaskOneId_DistinctAcrossAgentsAndTasks()
    {
        Assert.That(LeaseIds.For("agent-a", "t1"), Is.EqualTo(LeaseIds.For("agent-a", "t1")));
        Assert.That(new[] { LeaseIds.For("agent-a", "t1"), LeaseIds.For("agent-a", "t2"), LeaseIds.For("agent-b", "t1"), LeaseIds.For("agent-a\nt", "1") }, Is.Unique);
        Assert.That(LeaseIds.TryGetShard(LeaseIds.For("agent-a", "t1"), out var shard) && shard == LeaseIds.ShardOf("agent-a"), Is.True);
    }

    [Test]
    public async Task FindByTask_ReturnsTheAgentsLeaseForThatTaskOnly()
    {
        var lease = NewLease("agent-find", "find-" + Guid.NewGuid());
        await Open(lease);

        Assert.That((await Store.FindByTaskAsync("agent-find", lease.TaskId, default))?.LeaseId, Is.EqualTo(lease.LeaseId));
        Assert.That(await Store.FindByTaskAsync("agent-other", lease.TaskId, default), Is.Null);
        Assert.That(await Store.FindByTaskAsync("agent-find", "no-such-task", default), Is.Null);
    }

    [Test]
    public async Task Open_SameTaskIdForAnotherAgent_IsASeparateLease()
    {
        var a = await Open(NewLease("agent-a", "shared-" + Guid.NewGuid()));
        var b = await Open(NewLease("agent-b", a.Lease!.TaskId));

        Assert.That(b.Created, Is.True);
        Assert.That(b.Lease!.LeaseId, Is.Not.EqualTo(a.Lease.LeaseId));
    }

    [TestCase("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase("not-a-lease")]
    [TestCase("")]
    public async Task UnknownOrMalformedLeaseId_IsNotFound(string leaseId)
    {
        Assert.That(await Store.GetAsync(leaseId, default), Is.Null);
        Assert.That((await Complete(leaseId, Now)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
        Assert.That((await Renew(leaseId, Now.AddMinutes(1), Now)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
        Assert.That((await Revoke(leaseId, Now)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
        Assert.That((await Revoke(leaseId, Now, generation: 3)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
    }

    [Test]
    public async Task Complete_ActiveLease_CompletesBumpsGenerationLeavesTheIndexAndAppendsOneEvent()
    {
        var agent = NewAgent();
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var result = await Complete(lease.LeaseId, Now);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(result.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(result.Lease.Generation, Is.EqualTo(lease.Generation + 1));
        Assert.That(result.Lease.EndedAt, Is.EqualTo(Now));
        Assert.That((await ClaimAll(Now.AddHours(2))).Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId));
        var (events, _) = await ReadAll(tail);
        var e = events.Single(x => x.AgentId == agent);
        Assert.That((e.Kind, e.LeaseId, e.TaskId, e.Cause, e.Actor, e.At, e.NotAfter),
            Is.EqualTo((RevocationKind.Lease, lease.LeaseId, lease.TaskId, RevocationCause.Completed, agent, Now, lease.Deadline)));
        Assert.That(e.Shard, Is.EqualTo(LeaseIds.ShardOf(agent)));
    }

    [Test]
    public async Task Complete_ByAnotherAgent_IsNotFound_AndLeavesTheLeaseOpenWithNoEvent()
    {
        var agent = NewAgent();
        var lease = NewLease(agent);
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var foreign = await Store.CompleteAsync(lease.LeaseId, NewAgent(), Now, null, default);
        var own = await Store.CompleteAsync(lease.LeaseId, agent, Now, null, default);

        Assert.That((foreign.Outcome, foreign.Lease), Is.EqualTo((TransitionOutcome.NotFound, (Lease?)null)));
        Assert.That((own.Outcome, own.Lease!.State), Is.EqualTo((TransitionOutcome.Applied, LeaseState.Completed)));
        Assert.That((await ReadAll(tail)).Events.Count(e => e.AgentId == agent), Is.EqualTo(1));
    }

    [Test]
    public async Task CompleteAndRevoke_ReturnTheLeasesChildren_WithTheTransition()
    {
        var agent = NewAgent();
        var (parent, other) = (NewLease(agent), NewLease(agent));
        await Open(parent);
        await Open(other);
        var (childA, childB) = (NewLease(NewAgent()), NewLease(NewAgent()));
        await Store.AddChildAsync(parent.LeaseId, childB.LeaseId, Now, default);
        await Store.AddChildAsync(parent.LeaseId, childA.LeaseId, Now, default);

        var completed = await Complete(parent.LeaseId, Now);
        var again = await Complete(parent.LeaseId, Now);
        var revoked = await Revoke(other.LeaseId, Now);

        var expected = new[] { childA.LeaseId, childB.LeaseId }.Order(StringComparer.Ordinal).ToList();
        Assert.That(completed.Children, Is.EqualTo(expected));
        Assert.That(again.Children, Is.EqualTo(expected), "a repeated complete returns them too (it heals an interrupted cascade)");
        Assert.That(revoked.Children, Is.Empty);
    }

    [Test]
    public async Task Complete_Twice_IsIdempotentWithOneEvent()
    {
        var agent = NewAgent();
        var lease = NewLease(agent);
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);
        await Complete(lease.LeaseId, Now);

        var again = await Complete(lease.LeaseId, Now.AddSeconds(1));

        Assert.That(again.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(again.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(again.Lease.Generation, Is.EqualTo(1));
        Assert.That(again.Lease.EndedAt, Is.EqualTo(Now));
        Assert.That((await ReadAll(tail)).Events.Count(e => e.AgentId == agent), Is.EqualTo(1));
    }

    [Test]
    public async Task Complete_AfterDeadline_EndsAsExpiredWithoutAnEvent()
    {
        var agent = NewAgent();
        var lease = NewLease(agent, ttl: TimeSpan.FromSeconds(5));
        await Open(lease);
        var tail = await Store.CurrentRevocationCursorAsync(default);

        var result = await Complete(lease.LeaseId, Now.AddSeconds(6));

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(result.Lease!.State, Is.EqualTo(LeaseState.Expired));
        Assert.That(result.Lease.EndedAt, Is.EqualTo(lease.Deadline));
        Assert.That((await ReadAll(tail)).Events.Where(e => e.AgentId == agent), Is.Empty);
    }

    [Test]
    public async Task Renew_ExtendsDeadlineBumpsGenerationAndMovesTheIndex()
    {
        var lease = NewLease(NewAgent(), ttl: TimeSpan.FromMinutes(1));
        await Open(lease);

        var result = await Renew(lease.LeaseId, Now.AddMinutes(20), Now);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(result.Lease!.Deadline, Is.EqualTo(Now.AddMinutes(20)));
        Assert.That(result.Lease.Generation, Is.EqualTo(1));
        Assert.That((await ClaimAll(Now.AddMinutes(2))).Select(l => l.LeaseId), Does.Not.Contain(lease.LeaseId));
        Assert.That((await Store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Active));
        Assert.That((await ClaimAll(Now.AddMinutes(21))).Select(l => l.LeaseId), Does.Contain(lease.LeaseId));
    }

    [Test]
    public async Task Renew_IsClampedToMaxDeadlineAndNeverShortens()
    {
        var lease = NewLease(ttl: TimeSpan.FromMinutes(10));
        await Open(lease);

        var beyond = await Renew(lease.LeaseId, Now.AddHours(5), Now);
        var shorter = await Renew(lease.LeaseId, Now.AddMinutes(1), Now);

        Assert.That(beyond.Lease!.Deadline, Is.EqualTo(lease.MaxDeadline));
        Assert.That(shorter.Lease!.Deadline, Is.EqualTo(lease.MaxDeadline));
    }

    [Test]
    public async Task Renew_CompletedOrExpiredLease_IsNotApplicable()
    {
        var completed = NewLease();
        await Open(completed);
        await Complete(completed.LeaseId, Now);
        var expired = NewLease(ttl: TimeSpan.FromSeconds(1));
        await Open(expired);

        var a = await Renew(completed.LeaseId, Now.AddMinutes(5), Now);
        var b = await Renew(expired.LeaseId, Now.AddMinutes(5), Now.AddSeconds(2));

        Assert.That(a.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(a.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(b.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(b.Lease!.Deadline, Is.EqualTo(expired.Deadline));
    }

    [Test]
    public async Task StaleGeneration_IsAConflictAndChangesNothing()
    {
        var lease = NewLease(NewAgent());
        await Open(lease);
        var renewed = await Renew(lease.LeaseId, Now.AddMinutes(20), Now, generation: 0);

        var staleRenew = await Renew(lease.LeaseId, Now.AddMinutes(30), Now, generation: 0);
        var staleComplete = await Complete(lease.LeaseId, Now, generation: 0);
        var staleRevoke = await Revoke(lease.LeaseId, Now, generation: 7);
        var unchanged = await Store.GetAsync(lease.LeaseId, default);
        var fresh = await Complete(lease.LeaseId, Now, generation: 1);

        Assert.That(renewed.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(new[] { staleRenew, staleComplete, staleRevoke }.Select(t => t.Outcome), Is.All.EqualTo(TransitionOutcome.Conflict));
        Assert.That(staleRenew.Lease, Is.EqualTo(renewed.Lease).Using<Lease>((x, y) => x.Generation == y.Generation && x.Deadline == y.Deadline));
        Assert.That((unchanged!.State, unchanged.Generation, unchanged.Deadline), Is.EqualTo((LeaseState.Active, 1L, Now.AddMinutes(20))));
        Assert.That((fresh.Outcome, fresh.Lease!.State, fresh.Lease.Generation), Is.EqualTo((TransitionOutcome.Applied, LeaseState.Completed, 2L)));
    }

    [Test]
    public async Task TerminalStates_AreFinal()
    {
        var agent = NewAgent();
        var completed = NewLease(agent);
        var revoked = NewLease(agent);
        var expired = NewLease(agent, ttl: TimeSpan.FromSeconds(1));
        foreach (var l in new[] { completed, revoked, expired })
        {
            await Open(l);
        }

        await Complete(completed.LeaseId, Now);
        await Revoke(revoked.LeaseId, Now);
        Assert.That((await ClaimAll(Now.AddSeconds(2))).Select(l => l.LeaseId), Does.Contain(expired.LeaseId));
        var tail = await Store.CurrentRevocationCursorAsync(default);

        foreach (var l in new[] { completed, revoked, expired })
        {
            var before = await Store.GetAsync(l.LeaseId, default);
            var results = new[]
            {
                await Renew(l.LeaseId, Now.AddMinutes(30), Now),
                await Complete(l.LeaseId, Now),
                await Revoke(l.LeaseId, Now),
                await Revoke(l.LeaseId, Now, generation: before!.Generation),
            };
            Assert.That(results.Select(r => r.Outcome), Is.All.EqualTo(TransitionOutcome.NotApplicable), before.State.ToWire());
            Assert.That(results.Select(r => r.Lease), Is.All.EqualTo(before).Using<Lease>((x, y) => x with { Scopes = [] } == y with { Scopes = [] }));
            Assert.That(await Store.GetAsync(l.LeaseId, default), Is.EqualTo(before).Using<Lease>((x, y) => x with { Scopes = [] } == y with { Scopes = [] }));
        }

        Assert.That((await ReadAll(tail)).Events.Where(e => e.AgentId == agent), Is.Empty, "no event for a transition that did not happen");
    }

    [Test]
    public async Task ConcurrentOpens_OfOneTask_CreateExactlyOneLease()
    {
        var task = "race-" + Guid.NewGuid();

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => Open(NewLease("agent-r", task)))));

        Assert.That(results.Count(r => r.Created), Is.EqualTo(1));
        Assert.That(results.Select(r => r.Lease!.LeaseId).Distinct().Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task ConcurrentCompleteAndRenew_NeverLeaveACompletedLeaseActive()
    {
        var leases = Enumerable.Range(0, 20).Select(_ => NewLease(NewAgent())).ToList();
        foreach (var l in leases)
        {
            await Open(l);
        }

        await Task.WhenAll(leases.SelectMany(l => new Func<Task>[]
        {
            () => Renew(l.LeaseId, Now.AddMinutes(30), Now),
            () => Complete(l.LeaseId, Now),
            () => Renew(l.LeaseId, Now.AddMinutes(40), Now),
        }).Select(f => Task.Run(f)));

        var claimed = (await ClaimAll(Now.AddHours(2))).Select(l => l.LeaseId).ToHashSet();
        foreach (var l in leases)
        {
            var final = await Store.GetAsync(l.LeaseId, default);
            Assert.That(final!.State, Is.EqualTo(LeaseState.Completed));
            Assert.That(claimed, Does.Not.Contain(l.LeaseId));
        }
    }
}
