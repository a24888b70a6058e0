using CredBroker.Core.Leases;
using CredBroker.Core.Policy;

namespace CredBroker.Testing;

/// <summary>
/// Toxic combinations across an agent's leases, checked by the open itself (issue 15 item 8): what
/// the agent's other active leases hold is read in the same atomic step as the write.
/// </summary>
public abstract partial class LeaseStoreContract
{
    private const string ExfiltrationRule = "toxic.secret-exfiltration";

    private static Lease Holding(string agent, params string[] scopes) => NewLease(agent) with { Scopes = scopes };

    private static LeaseQuota Guarded(params string[] heldPatterns) =>
        new() { ToxicGuards = [new ToxicGuard(ExfiltrationRule, heldPatterns.Select(ScopePattern.Parse).ToList())] };

    [Test]
    public async Task Open_WithToxicGuard_IsRefusedWhileAnotherActiveLeaseHoldsTheOtherHalf_AndWritesNothing()
    {
        var agent = NewAgent();
        var secrets = Holding(agent, "secrets:read:db");
        await Open(secrets);
        var post = Holding(agent, "http:post:external");

        var refused = await Open(post, Guarded("secrets:read:*"));

        Assert.That((refused.Refusal, refused.RuleId, refused.Lease, refused.Created),
            Is.EqualTo((OpenRefusal.ToxicCombination, (string?)ExfiltrationRule, (Lease?)null, false)));
        Assert.That(await Store.GetAsync(post.LeaseId, default), Is.Null, "a refused open writes nothing");
        Assert.That((await Store.ListOpenLeasesAsync(agent, Now, 10, default)).Select(l => l.LeaseId), Is.EqualTo(new[] { secrets.LeaseId }));

        await Complete(secrets.LeaseId, Now);
        var afterCompletion = await Open(post, Guarded("secrets:read:*"));
        Assert.That((afterCompletion.Created, afterCompletion.Refusal), Is.EqualTo((true, OpenRefusal.None)), "an ended lease holds nothing");
    }

    [Test]
    public async Task Open_WithToxicGuard_CountsOnlyThisAgentsActiveUnexpiredLeases_AndMatchesPatternsBySegment()
    {
        var agent = NewAgent();
        await Open(Holding(NewAgent(), "secrets:read:db"));                          // another agent's
        await Open(NewPending(agent) with { Scopes = ["secrets:read:db"] });         // pending approval: holds no token
        await Open(Holding(agent, "secrets:read:db/replica"));                       // '*' is one segment: no match
        await Open(Holding(agent, "secrets:read") with { Deadline = Now.AddSeconds(1) });

        var created = await Open(Holding(agent, "http:post:external") with { CreatedAt = Now.AddSeconds(2) }, Guarded("secrets:read:*", "secrets:read"));
        Assert.That((created.Created, created.Refusal), Is.EqualTo((true, OpenRefusal.None)), "a lease past its deadline holds nothing");

        await Open(Holding(agent, "secrets:read"));
        var refused = await Open(Holding(agent, "tickets:read"), Guarded("http:post:*", "secrets:read"));
        Assert.That(refused.Refusal, Is.EqualTo(OpenRefusal.ToxicCombination), "every pattern held, by different leases");
        var exact = await Open(Holding(agent, "http:post:external"), Guarded("secrets:read:db", "secrets:read"));
        Assert.That(exact.Refusal, Is.EqualTo(OpenRefusal.None), "'secrets:read:db' is held only by the pending lease");

        // Pattern characters are literal: '.' and '-' are not wildcards, nor is a prefix a match.
        await Open(Holding(agent, "kbXread", "ops-x"));
        var literal = await Open(Holding(agent, "tickets:read"), Guarded("kb.read"));
        var dash = await Open(Holding(agent, "tickets:read"), Guarded("ops-"));
        var prefix = await Open(Holding(agent, "tickets:read"), Guarded("kbX"));
        Assert.That((literal.Refusal, dash.Refusal, prefix.Refusal), Is.EqualTo((OpenRefusal.None, OpenRefusal.None, OpenRefusal.None)));
    }

    [Test]
    public async Task Open_WithToxicGuard_AnExistingTaskIsReturned_AndNoGuardReadsNothing()
    {
        var agent = NewAgent();
        var post = Holding(agent, "http:post:external");
        await Open(post);
        await Open(Holding(agent, "secrets:read:db"));

        var replay = await Open(post, Guarded("secrets:read:*"));
        var unguarded = await Open(Holding(agent, "http:post:external"));

        Assert.That((replay.Created, replay.Lease?.LeaseId), Is.EqualTo((false, (string?)post.LeaseId)), "a replayed open answers with its lease");
        Assert.That((unguarded.Created, unguarded.Refusal), Is.EqualTo((true, OpenRefusal.None)), "no guards, no check");
    }

    [Test]
    public async Task ConcurrentOpens_OfBothHalvesOfAToxicPair_NeverBothSucceed()
    {
        for (var round = 0; round < 25; round++)
        {
            var agent = NewAgent();
            var secrets = Holding(agent, "secrets:read:db");
            var post = Holding(agent, "http:post:external");
            using var start = new ManualResetEventSlim();
            var opens = new[]
            {
                Task.Run(async () => { start.Wait(); return await Open(secrets, Guarded("http:post:external")); }),
                Task.Run(async () => { start.Wait(); return await Open(post, Guarded("secrets:read:*")); }),
            };
            start.Set();
            var results = await Task.WhenAll(opens);

            Assert.That(results.Count(r => r.Created), Is.EqualTo(1), $"round {round}: exactly one of the pair is opened");
            Assert.That(results.Single(r => !r.Created).RuleId, Is.EqualTo(ExfiltrationRule));
            var open = await Store.ListOpenLeasesAsync(agent, Now, 10, default);
            Assert.That(open, Has.Count.EqualTo(1), $"round {round}: the agent holds one of the pair");
        }
    }

    private Task<LeaseTransition> ApproveGuarded(Lease pending, params string[] heldPatterns) =>
        Store.ApproveAsync(pending.LeaseId, pending.Scopes, Now.AddMinutes(20), "approver@example.com", "", Now, null, default,
            Guarded(heldPatterns).ToxicGuards);

    [Test]
    public async Task Approve_WithToxicGuard_IsRefusedWhileAnotherActiveLeaseHoldsTheOtherHalf_AndChangesNothing()
    {
        var agent = NewAgent();
        var pending = NewPending(agent) with { Scopes = ["secrets:read:db"] };
        await Open(pending);
        var post = Holding(agent, "http:post:external");
        await Open(post);

        var refused = await ApproveGuarded(pending, "http:post:*");

        Assert.That((refused.Outcome, refused.RuleId), Is.EqualTo((TransitionOutcome.ToxicCombination, (string?)ExfiltrationRule)));
        var read = (await Store.GetAsync(pending.LeaseId, default))!;
        Assert.That((read.State, read.Generation, read.Approval!.Approved), Is.EqualTo((LeaseState.PendingApproval, 0L, (bool?)null)), "nothing written");

        await Complete(post.LeaseId, Now);
        var approved = await ApproveGuarded(pending, "http:post:*");
        Assert.That(approved.Outcome, Is.EqualTo(TransitionOutcome.Applied), "the other half is gone");
    }

    [Test]
    public async Task ConcurrentApprovalAndOpen_OfBothHalvesOfAToxicPair_NeverBothActive()
    {
        for (var round = 0; round < 25; round++)
        {
            var agent = NewAgent();
            var pending = NewPending(agent) with { Scopes = ["secrets:read:db"] };
            await Open(pending);
            var post = Holding(agent, "http:post:external");
            using var start = new ManualResetEventSlim();
            var approve = Task.Run(async () => { start.Wait(); return await ApproveGuarded(pending, "http:post:external"); });
            var open = Task.Run(async () => { start.Wait(); return await Open(post, Guarded("secrets:read:*")); });
            start.Set();
            await Task.WhenAll(approve, open);

            Assert.That(((await approve).Outcome == TransitionOutcome.Applied) && (await open).Created, Is.False, $"round {round}: both halves active");
            Assert.That(((await approve).Outcome == TransitionOutcome.Applied) || (await open).Created, Is.True, $"round {round}: one of them goes through");
            var active = (await Store.ListOpenLeasesAsync(agent, Now, 10, default)).Count(l => l.State == LeaseState.Active);
            Assert.That(active, Is.EqualTo(1), $"round {round}");
        }
    }
}
