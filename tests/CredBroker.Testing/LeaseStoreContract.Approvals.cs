using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>Pending approvals (pending_approval → active | revoked | expired) and the agent's open-lease listing.</summary>
public abstract partial class LeaseStoreContract
{
    protected static Lease NewPending(string agent, TimeSpan? approvalTimeout = null, DateTimeOffset? at = null) =>
        NewLease(agent, ttl: approvalTimeout ?? TimeSpan.FromMinutes(5), at: at) with
        {
            State = LeaseState.PendingApproval,
            Scopes = ["a:read", "b:admin", "c:write"],
            Approval = new LeaseApproval
            {
                RequestedScopes = ["a:read", "b:admin", "c:write"],
                ApprovalScopes = ["b:admin"],
                LeaseTtl = TimeSpan.FromMinutes(20),
                Reason = "Scope 'b:admin' requires human approval.",
                RuleIds = ["agent.allowed_scopes", "agent.approval"],
            },
        };

    [Test]
    public async Task Pending_RoundTripsItsApprovalRecord_AndCountsAsOpen()
    {
        var agent = NewAgent();
        var pending = NewPending(agent);

        await Open(pending);
        var read = (await Store.GetAsync(pending.LeaseId, default))!;
        var open = await Store.ListOpenLeasesAsync(agent, Now, 10, default);

        Assert.That(read.State, Is.EqualTo(LeaseState.PendingApproval));
        Assert.That(read.Approval!.ApprovalScopes, Is.EqualTo(new[] { "b:admin" }));
        Assert.That(read.Approval.RequestedScopes, Is.EqualTo(pending.Approval!.RequestedScopes));
        Assert.That((read.Approval.LeaseTtl, read.Approval.Reason, read.Approval.Approved), Is.EqualTo((TimeSpan.FromMinutes(20), pending.Approval.Reason, (bool?)null)));
        Assert.That(read.Approval.RuleIds, Is.EqualTo(pending.Approval.RuleIds));
        Assert.That(open.Select(l => l.LeaseId), Is.EqualTo(new[] { pending.LeaseId }));
    }

    [Test]
    public async Task Approve_ActivatesWithNarrowedScopesAndANewDeadline_Once()
    {
        var pending = NewPending(NewAgent());
        await Open(pending);
        var deadline = Now.AddMinutes(21);

        var approved = await Store.ApproveAsync(pending.LeaseId, ["a:read", "b:admin"], deadline, "alice@example.com", "only these", Now.AddMinutes(1), pending.Generation, default);
        var again = await Store.ApproveAsync(pending.LeaseId, ["a:read"], deadline, "bob@example.com", "", Now.AddMinutes(2), null, default);
        var read = (await Store.GetAsync(pending.LeaseId, default))!;

        Assert.That(approved.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That((read.State, read.Deadline, read.Generation), Is.EqualTo((LeaseState.Active, deadline, pending.Generation + 1)));
        Assert.That(read.Scopes, Is.EqualTo(new[] { "a:read", "b:admin" }));
        Assert.That((read.Approval!.Approved, read.Approval.DecidedBy, read.Approval.Note), Is.EqualTo(((bool?)true, "alice@example.com", "only these")));
        Assert.That(again.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable), "an active lease is not pending any more");
        Assert.That(again.Lease!.Approval!.DecidedBy, Is.EqualTo("alice@example.com"));
    }

    [Test]
    public async Task Approve_IsClampedToTheMaxDeadline_AndIndexedForTheSweeper()
    {
        var pending = NewPending(NewAgent());
        await Open(pending);

        await Store.ApproveAsync(pending.LeaseId, ["a:read"], Now.AddHours(5), "alice", "", Now, null, default);
        var claimedEarly = await ClaimAll(pending.MaxDeadline.AddMilliseconds(-1));
        var claimed = await ClaimAll(pending.MaxDeadline);

        Assert.That((await Store.GetAsync(pending.LeaseId, default))!.Deadline, Is.EqualTo(pending.MaxDeadline));
        Assert.That(claimedEarly.Select(c => c.LeaseId), Does.Not.Contain(pending.LeaseId));
        Assert.That(claimed.Select(c => c.LeaseId), Does.Contain(pending.LeaseId));
    }

    [Test]
    public async Task Approve_AfterTheApprovalExpired_ChangesNothing()
    {
        var pending = NewPending(NewAgent(), TimeSpan.FromMinutes(1));
        await Open(pending);

        var late = await Store.ApproveAsync(pending.LeaseId, ["a:read"], Now.AddMinutes(30), "alice", "", Now.AddMinutes(1), null, default);
        await ClaimAll(Now.AddMinutes(1));
        var swept = await Store.ApproveAsync(pending.LeaseId, ["a:read"], Now.AddMinutes(30), "alice", "", Now.AddSeconds(30), null, default);

        Assert.That(late.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(swept.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable), "once swept it is expired whatever the caller's clock says");
        Assert.That(swept.Lease!.State, Is.EqualTo(LeaseState.Expired));
        Assert.That(swept.Lease.Approval!.Approved, Is.Null);
    }

    [Test]
    public async Task Approve_WithAStaleGeneration_IsAConflict()
    {
        var pending = NewPending(NewAgent());
        await Open(pending);

        var result = await Store.ApproveAsync(pending.LeaseId, ["a:read"], Now.AddMinutes(10), "alice", "", Now, pending.Generation + 7, default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.Conflict));
        Assert.That((await Store.GetAsync(pending.LeaseId, default))!.State, Is.EqualTo(LeaseState.PendingApproval));
    }

    [Test]
    public async Task Deny_IsARevokeThatRecordsWhoAndWhy()
    {
        var pending = NewPending(NewAgent());
        await Open(pending);

        var denied = await Store.RevokeAsync(pending.LeaseId, "not during the freeze", "alice@example.com", Now.AddMinutes(1), pending.Generation, default);
        var approveAfter = await Store.ApproveAsync(pending.LeaseId, ["a:read"], Now.AddMinutes(30), "bob", "", Now.AddMinutes(2), null, default);

        Assert.That(denied.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(denied.Lease!.State, Is.EqualTo(LeaseState.Revoked));
        Assert.That((denied.Lease.Approval!.Approved, denied.Lease.Approval.DecidedBy, denied.Lease.Approval.Note), Is.EqualTo(((bool?)false, "alice@example.com", "not during the freeze")));
        Assert.That(approveAfter.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(await Store.ListOpenLeasesAsync(pending.AgentId, Now.AddMinutes(2), 10, default), Is.Empty);
    }

    [Test]
    public async Task ListOpen_HasTheAgentsLiveLeasesOnly_SoonestDeadlineFirst()
    {
        var agent = NewAgent();
        var later = NewLease(agent, ttl: TimeSpan.FromMinutes(30));
        var sooner = NewLease(agent, ttl: TimeSpan.FromMinutes(3));
        var completed = NewLease(agent);
        var timedOut = NewLease(agent, ttl: TimeSpan.FromMinutes(1));
        var pending = NewPending(agent, TimeSpan.FromMinutes(10));
        var otherAgents = NewLease(NewAgent());
        foreach (var lease in new[] { later, sooner, completed, timedOut, pending, otherAgents })
        {
            await Open(lease);
        }

        await Complete(completed.LeaseId, Now);
        var open = await Store.ListOpenLeasesAsync(agent, Now.AddMinutes(2), 10, default);
        var limited = await Store.ListOpenLeasesAsync(agent, Now.AddMinutes(2), 1, default);

        Assert.That(open.Select(l => l.LeaseId), Is.EqualTo(new[] { sooner.LeaseId, pending.LeaseId, later.LeaseId }));
        Assert.That(open.Select(l => l.State), Is.EqualTo(new[] { LeaseState.Active, LeaseState.PendingApproval, LeaseState.Active }));
        Assert.That(limited.Select(l => l.LeaseId), Is.EqualTo(new[] { sooner.LeaseId }));
        Assert.That(await Store.ListOpenLeasesAsync(NewAgent(), Now, 10, default), Is.Empty);
    }
}
