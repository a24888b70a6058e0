using CredBroker.Core.Leases;

namespace CredBroker.Testing;

/// <summary>The contract for delegation: the chain fields of a lease, and the children index a cascade walks.</summary>
public abstract partial class LeaseStoreContract
{
    private static Lease DelegatedLease(string agent, Lease parent) => NewLease(agent) with
    {
        Subject = "user:alice@example.com",
        Actors = [parent.AgentId, .. parent.Actors],
        ParentLeaseIds = [parent.LeaseId, .. parent.ParentLeaseIds],
    };

    [Test]
    public async Task Open_DelegatedLease_KeepsSubjectActorsAndParents()
    {
        var root = NewLease(NewAgent());
        var child = DelegatedLease(NewAgent(), root);
        var grandchild = DelegatedLease(NewAgent(), child);

        await Open(root);
        await Open(grandchild);
        var read = await Store.GetAsync(grandchild.LeaseId, default);
        var plain = await Store.GetAsync(root.LeaseId, default);

        Assert.That(read!.Subject, Is.EqualTo("user:alice@example.com"));
        Assert.That(read.Actors, Is.EqualTo(new[] { child.AgentId, root.AgentId }));
        Assert.That(read.ParentLeaseIds, Is.EqualTo(new[] { child.LeaseId, root.LeaseId }));
        Assert.That(plain!.Subject, Is.Null, "a lease that is not delegated has no chain");
        Assert.That(plain.Actors, Is.Empty);
        Assert.That(plain.ParentLeaseIds, Is.Empty);
    }

    [Test]
    public async Task AddChild_ToAnActiveParent_IsListedOnce()
    {
        var parent = NewLease(NewAgent());
        await Open(parent);
        var first = LeaseIds.For(NewAgent(), "child-1");
        var second = LeaseIds.For(NewAgent(), "child-2");

        var added = await Store.AddChildAsync(parent.LeaseId, first, Now, default);
        await Store.AddChildAsync(parent.LeaseId, second, Now, default);
        await Store.AddChildAsync(parent.LeaseId, first, Now, default);

        Assert.That(added.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(added.Lease!.LeaseId, Is.EqualTo(parent.LeaseId));
        Assert.That(await Store.GetChildrenAsync(parent.LeaseId, default), Is.EquivalentTo(new[] { first, second }));
        Assert.That(await Store.GetChildrenAsync(first, default), Is.Empty, "children are not transitive in the index");
    }

    [Test]
    public async Task AddChild_ToAnEndedOrTimedOutParent_IsRefusedAndRecordsNothing()
    {
        var revoked = NewLease(NewAgent());
        var timedOut = NewLease(NewAgent(), ttl: TimeSpan.FromSeconds(5));
        await Open(revoked);
        await Open(timedOut);
        await Revoke(revoked.LeaseId, Now);
        var child = LeaseIds.For(NewAgent(), "child");

        var afterRevoke = await Store.AddChildAsync(revoked.LeaseId, child, Now.AddSeconds(1), default);
        var afterDeadline = await Store.AddChildAsync(timedOut.LeaseId, child, Now.AddSeconds(5), default);

        Assert.That(afterRevoke.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        Assert.That(afterRevoke.Lease!.State, Is.EqualTo(LeaseState.Revoked));
        Assert.That(afterDeadline.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable), "a parent at its deadline is no longer active");
        Assert.That(await Store.GetChildrenAsync(revoked.LeaseId, default), Is.Empty);
        Assert.That(await Store.GetChildrenAsync(timedOut.LeaseId, default), Is.Empty);
    }

    [Test]
    public async Task AddChild_ToASweptParent_IsRefused()
    {
        var parent = NewLease(NewAgent(), ttl: TimeSpan.FromSeconds(5));
        await Open(parent);
        await ClaimAll(Now.AddSeconds(5));

        var result = await Store.AddChildAsync(parent.LeaseId, LeaseIds.For(NewAgent(), "child"), Now.AddSeconds(1), default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable), "the sweeper's claim ended it, whatever the caller's clock says");
        Assert.That(result.Lease!.State, Is.EqualTo(LeaseState.Expired));
    }

    [TestCase("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [TestCase("not-a-lease")]
    public async Task AddChild_ToAnUnknownParent_IsNotFound(string parentId)
    {
        var result = await Store.AddChildAsync(parentId, LeaseIds.For(NewAgent(), "child"), Now, default);

        Assert.That(result.Outcome, Is.EqualTo(TransitionOutcome.NotFound));
        Assert.That(await Store.GetChildrenAsync(parentId, default), Is.Empty);
    }
}
