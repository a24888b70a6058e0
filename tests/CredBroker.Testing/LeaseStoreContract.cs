using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>The lease store contract, written once and run against every store (in-memory and Redis).</summary>
public abstract class LeaseStoreContract
{
    // Redis keeps milliseconds: start on a whole millisecond so round trips compare equal.
    protected static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    protected abstract ILeaseStore Store { get; }

    protected static Lease NewLease(string agent = "agent-a", string? task = null, TimeSpan? ttl = null) => new()
    {
        LeaseId = LeaseIds.New(agent),
        AgentId = agent,
        TaskId = task ?? "task-" + Guid.NewGuid().ToString("N"),
        Owner = "owner@example.com",
        Purpose = "contract test",
        Audience = "api",
        Scopes = ["a:read", "b:write"],
        State = LeaseState.Active,
        CreatedAt = Now,
        Deadline = Now + (ttl ?? TimeSpan.FromMinutes(10)),
        MaxDeadline = Now + TimeSpan.FromHours(1),
    };

    [Test]
    public async Task Open_NewTask_CreatesTheLeaseWithEveryField()
    {
        var lease = NewLease();

        var result = await Store.OpenAsync(lease, default);
        var read = await Store.GetAsync(lease.LeaseId, default);

        Assert.That(result.Created, Is.True);
        Assert.That(read, Is.Not.Null);
        Assert.That(read! with { Scopes = lease.Scopes }, Is.EqualTo(lease));
        Assert.That(read.Scopes, Is.EqualTo(lease.Scopes));
    }

    [Test]
    public async Task Open_SameAgentAndTask_ReturnsTheExistingLeaseAndWritesNothing()
    {
        var first = NewLease(task: "same-task");
        await Store.OpenAsync(first, default);
        var second = NewLease(task: "same-task");

        var result = await Store.OpenAsync(second, default);

        Assert.That(result.Created, Is.False);
        Assert.That(result.Lease.LeaseId, Is.EqualTo(first.LeaseId));
        Assert.That(await Store.GetAsync(second.LeaseId, default), Is.Null);
    }

    [Test]
    public async Task Open_SameTaskIdForAnotherAgent_IsASeparateLease()
    {
        var a = await Store.OpenAsync(NewLease("agent-a", "shared-" + Guid.NewGuid()), default);
        var b = await Store.OpenAsync(NewLease("agent-b", a.Lease.TaskId), default);

        Assert.That(b.Created, Is.True);
        Assert.That(b.Lease.LeaseId, Is.Not.EqualTo(a.Lease.LeaseId));
    }

    [TestCase("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase("not-a-lease")]
    [TestCase("")]
    public async Task UnknownOrMalformedLeaseId_IsNotFound(string leaseId)
    {
        Assert.That(await Store.GetAsync(leaseId, default), Is.Null);
        Assert.That((await Store.CompleteAsync(leaseId, Now, default)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
        Assert.That((await Store.RenewAsync(leaseId, Now.AddMinutes(1), Now, default)).Outcome, Is.EqualTo(TransitionOutcome.NotFound));
    }

    [Test]
    public async Task Complete_ActiveLease_CompletesBumpsGenerationAndLeavesTheDeadlineIndex()
    {
        var lease = NewLease(ttl: TimeSpan.FromSeconds(1));
        await Store.OpenAsync(lease, default);

        var result = await Store.CompleteAsync(lease.LeaseId, Now, default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(result.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(result.Lease.Generation, Is.EqualTo(lease.Generation + 1));
        Assert.That(result.Lease.EndedAt, Is.EqualTo(Now));
        Assert.That(await Store.ListDueAsync(Now.AddHours(2), 10_000, default), Does.Not.Contain(lease.LeaseId));
    }

    [Test]
    public async Task Complete_Twice_IsIdempotent()
    {
        var lease = NewLease();
        await Store.OpenAsync(lease, default);
        await Store.CompleteAsync(lease.LeaseId, Now, default);

        var again = await Store.CompleteAsync(lease.LeaseId, Now.AddSeconds(1), default);

        Assert.That(again.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(again.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(again.Lease.Generation, Is.EqualTo(1));
    }

    [Test]
    public async Task Complete_AfterDeadline_EndsAsExpired()
    {
        var lease = NewLease(ttl: TimeSpan.FromSeconds(5));
        await Store.OpenAsync(lease, default);

        var result = await Store.CompleteAsync(lease.LeaseId, Now.AddSeconds(6), default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(result.Lease!.State, Is.EqualTo(LeaseState.Expired));
        Assert.That(result.Lease.EndedAt, Is.EqualTo(lease.Deadline));
    }

    [Test]
    public async Task Renew_ExtendsDeadlineBumpsGenerationAndMovesTheIndex()
    {
        var lease = NewLease(ttl: TimeSpan.FromMinutes(1));
        await Store.OpenAsync(lease, default);

        var result = await Store.RenewAsync(lease.LeaseId, Now.AddMinutes(20), Now, default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(result.Lease!.Deadline, Is.EqualTo(Now.AddMinutes(20)));
        Assert.That(result.Lease.Generation, Is.EqualTo(1));
        Assert.That(await Store.ListDueAsync(Now.AddMinutes(2), 10_000, default), Does.Not.Contain(lease.LeaseId));
        Assert.That(await Store.ListDueAsync(Now.AddMinutes(21), 10_000, default), Does.Contain(lease.LeaseId));
    }

    [Test]
    public async Task Renew_IsClampedToMaxDeadlineAndNeverShortens()
    {
        var lease = NewLease(ttl: TimeSpan.FromMinutes(10));
        await Store.OpenAsync(lease, default);

        var beyond = await Store.RenewAsync(lease.LeaseId, Now.AddHours(5), Now, default);
        var shorter = await Store.RenewAsync(lease.LeaseId, Now.AddMinutes(1), Now, default);

        Assert.That(beyond.Lease!.Deadline, Is.EqualTo(lease.MaxDeadline));
        Assert.That(shorter.Lease!.Deadline, Is.EqualTo(lease.MaxDeadline));
    }

    [Test]
    public async Task Renew_CompletedOrExpiredLease_IsNotApplicable()
    {
        var completed = NewLease();
        await Store.OpenAsync(completed, default);
        await Store.CompleteAsync(completed.LeaseId, Now, default);
        var expired = NewLease(ttl: TimeSpan.FromSeconds(1));
        await Store.OpenAsync(expired, default);

        var a = await Store.RenewAsync(completed.LeaseId, Now.AddMinutes(5), Now, default);
        var b = await Store.RenewAsync(expired.LeaseId, Now.AddMinutes(5), Now.AddSeconds(2), default);

        Assert.That(a.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(a.Lease!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(b.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(b.Lease!.Deadline, Is.EqualTo(expired.Deadline));
    }

    [Test]
    public async Task ListDue_ReturnsOnlyDueLeasesOldestFirst_UpToTheLimit()
    {
        var later = NewLease("agent-x", ttl: TimeSpan.FromSeconds(30));
        var sooner = NewLease("agent-y", ttl: TimeSpan.FromSeconds(10));
        var notDue = NewLease("agent-z", ttl: TimeSpan.FromMinutes(50));
        foreach (var l in new[] { later, sooner, notDue })
        {
            await Store.OpenAsync(l, default);
        }

        var due = await Store.ListDueAsync(Now.AddMinutes(1), 10_000, default);
        var limited = await Store.ListDueAsync(Now.AddMinutes(1), 1, default);

        Assert.That(due, Does.Contain(later.LeaseId).And.Contain(sooner.LeaseId).And.Not.Contain(notDue.LeaseId));
        Assert.That(due.ToList().IndexOf(sooner.LeaseId), Is.LessThan(due.ToList().IndexOf(later.LeaseId)));
        Assert.That(limited, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task ConcurrentOpens_OfOneTask_CreateExactlyOneLease()
    {
        var task = "race-" + Guid.NewGuid();

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => Store.OpenAsync(NewLease("agent-r", task), default))));

        Assert.That(results.Count(r => r.Created), Is.EqualTo(1));
        Assert.That(results.Select(r => r.Lease.LeaseId).Distinct().Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task ConcurrentCompleteAndRenew_NeverLeaveACompletedLeaseActive()
    {
        var leases = Enumerable.Range(0, 20).Select(_ => NewLease("agent-c")).ToList();
        foreach (var l in leases)
        {
            await Store.OpenAsync(l, default);
        }

        await Task.WhenAll(leases.SelectMany(l => new Func<Task>[]
        {
            () => Store.RenewAsync(l.LeaseId, Now.AddMinutes(30), Now, default),
            () => Store.CompleteAsync(l.LeaseId, Now, default),
            () => Store.RenewAsync(l.LeaseId, Now.AddMinutes(40), Now, default),
        }).Select(f => Task.Run(f)));

        foreach (var l in leases)
        {
            var final = await Store.GetAsync(l.LeaseId, default);
            Assert.That(final!.State, Is.EqualTo(LeaseState.Completed));
            Assert.That(await Store.ListDueAsync(Now.AddHours(2), 10_000, default), Does.Not.Contain(l.LeaseId));
        }
    }
}
