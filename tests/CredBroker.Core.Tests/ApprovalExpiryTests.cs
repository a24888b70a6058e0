using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tokens;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

/// <summary>
/// "Expired" is what the store says, not one replica's clock (found by the Sentinel chaos run: an agent told 'expired'
/// whose approval had no approval.expired record). Two replicas share one store: the watcher's clock has passed the
/// approval's deadline, the decider's has not (clocks differ by a little, and a decision's write can reach the store a
/// second or more after it was read, e.g. while its audit append waits for a replica during a failover).
/// </summary>
[TestFixture]
public sealed class ApprovalExpiryTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    private static readonly TimeSpan ApprovalTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>The watcher's clock is past the deadline, but no sweeper has ended the request: a decision that reaches the store first wins.</summary>
    [Test]
    public async Task PastTheDeadlineOnTheWatchersClock_ButNotEndedInTheStore_TheWatcherWaits_AndSeesTheDecisionThatLandsFirst()
    {
        var world = new World();
        var begun = await world.BeginAsync();
        world.Watcher.Advance(ApprovalTimeout + TimeSpan.FromSeconds(1));
        world.Decider.Advance(ApprovalTimeout - TimeSpan.FromSeconds(1));

        using var cancel = new CancellationTokenSource(Patience);
        await using var watch = world.WatcherDesk.WatchAsync(World.Caller, begun.LeaseId, cancel.Token).GetAsyncEnumerator(cancel.Token);
        Assert.That(await watch.MoveNextAsync(), Is.True);
        Assert.That(watch.Current.State, Is.EqualTo(ApprovalState.Pending), "the store still holds the request open: not expired yet");

        await world.DeciderDesk.ApproveAsync(begun.LeaseId, [], "alice", "ok", default);

        Assert.That(await watch.MoveNextAsync(), Is.True);
        Assert.That(watch.Current.State, Is.EqualTo(ApprovalState.Approved));
        Assert.That(watch.Current.Token, Is.Not.Null, "the decision that reached the store first is the outcome");
        Assert.That(await world.TypesAsync(begun.LeaseId), Does.Not.Contain(AuditEventType.ApprovalExpired));
    }

    /// <summary>Once a sweeper has claimed it the request is expired for everyone: the watcher says so, the expiry is recorded, a late decision is refused.</summary>
    [Test]
    public async Task OnceTheSweeperEndsIt_TheWatcherSaysExpired_ItIsRecorded_AndALateDecisionIsRefused()
    {
        var world = new World();
        var begun = await world.BeginAsync();
        world.Watcher.Advance(ApprovalTimeout + TimeSpan.FromSeconds(1));
        world.Decider.Advance(ApprovalTimeout - TimeSpan.FromSeconds(1));

        using var cancel = new CancellationTokenSource(Patience);
        await using var watch = world.WatcherDesk.WatchAsync(World.Caller, begun.LeaseId, cancel.Token).GetAsyncEnumerator(cancel.Token);
        Assert.That(await watch.MoveNextAsync(), Is.True);
        Assert.That(watch.Current.State, Is.EqualTo(ApprovalState.Pending));

        await new LeaseSweeper(world.Store, world.Watcher, audit: world.Audit).SweepOnceAsync(default);

        Assert.That(await watch.MoveNextAsync(), Is.True);
        Assert.That(watch.Current.State, Is.EqualTo(ApprovalState.Expired));
        Assert.That(await world.TypesAsync(begun.LeaseId), Does.Contain(AuditEventType.ApprovalExpired));
        var late = Assert.ThrowsAsync<BrokerException>(() => world.DeciderDesk.ApproveAsync(begun.LeaseId, [], "alice", "too late", default));
        Assert.That(late!.Kind, Is.EqualTo(BrokerErrorKind.FailedPrecondition));
    }

    /// <summary>
    /// A decision is checked against the deadline when it is written, not when it was read: here its audit append (which
    /// with replica acks waits for a replica) lasts past the deadline, and the approval is not applied.
    /// </summary>
    [Test]
    public async Task ADecisionWhoseAuditAppendOutlastsTheDeadline_IsNotApplied()
    {
        var world = new World();
        var begun = await world.BeginAsync();
        var second = await world.BeginAsync("task-2");
        world.Decider.Advance(ApprovalTimeout - TimeSpan.FromMilliseconds(100));
        world.SlowAudit.OnDecision = () => world.Decider.Advance(TimeSpan.FromSeconds(1));

        var approve = Assert.ThrowsAsync<BrokerException>(() => world.DeciderDesk.ApproveAsync(begun.LeaseId, [], "alice", "ok", default));

        Assert.That(approve!.Kind, Is.EqualTo(BrokerErrorKind.FailedPrecondition), approve.Message);
        Assert.That((await world.Store.GetAsync(begun.LeaseId, default))!.Approval!.Approved, Is.Null, "not approved after its deadline");

        world.Decider.Advance(TimeSpan.FromSeconds(-1));
        var deny = Assert.ThrowsAsync<BrokerException>(() => world.DeciderDesk.DenyAsync(second.LeaseId, "no", "alice", default));
        Assert.That(deny!.Kind, Is.EqualTo(BrokerErrorKind.FailedPrecondition), deny.Message);
        Assert.That((await world.Store.GetAsync(second.LeaseId, default))!.State, Is.EqualTo(LeaseState.Expired), "ended as expired, not denied, past its deadline");
    }

    private sealed class World
    {
        public static readonly CallerIdentity Caller = new("triage-agent", "mtls", "thumbprint");

        private readonly TaskBroker _broker;

        public World()
        {
            var key = SigningKey.Generate();
            var keys = new StaticSigningKeys([key]);
            Func<PolicyDocument> policy = () => PolicyFile.Parse($"""
                settings:
                  approval_timeout: {ApprovalTimeout.TotalSeconds:0}s
                agents:
                  - id: triage-agent
                    owner: support-team@example.com
                    purpose: triage
                    audiences: [tickets-api]
                    allowed_scopes: [tickets:read]
                    approval_scopes: [tickets:export]
                """, "test");
            Log = new InMemoryAuditLog(new HmacAuditSigner(new byte[32]));
            Audit = new AuditService(Log);
            SlowAudit = new SlowDecisions(Audit);
            var watcherPolicy = new PolicyHolder(policy, Watcher);
            var deciderPolicy = new PolicyHolder(policy, Decider);
            var watcherMinter = new TokenMinter(keys, "https://broker.test", Watcher);
            _broker = new TaskBroker(watcherPolicy, watcherPolicy, Store, watcherMinter, new TokenReader(keys, "https://broker.test", Watcher), Watcher, Audit);
            var decider = new TaskBroker(deciderPolicy, deciderPolicy, Store, new TokenMinter(keys, "https://broker.test", Decider),
                new TokenReader(keys, "https://broker.test", Decider), Decider, SlowAudit);
            WatcherDesk = new ApprovalDesk(watcherPolicy, _broker.Policy, Store, watcherMinter, Watcher, Audit) { PollInterval = TimeSpan.FromMilliseconds(20) };
            DeciderDesk = new ApprovalDesk(deciderPolicy, decider.Policy, Store, new TokenMinter(keys, "https://broker.test", Decider), Decider, SlowAudit);
        }

        public ManualTimeProvider Watcher { get; } = new(Start);

        public ManualTimeProvider Decider { get; } = new(Start);

        public InMemoryLeaseStore Store { get; } = new();

        public InMemoryAuditLog Log { get; }

        public AuditService Audit { get; }

        public SlowDecisions SlowAudit { get; }

        public ApprovalDesk WatcherDesk { get; }

        public ApprovalDesk DeciderDesk { get; }

        public async Task<Lease> BeginAsync(string task = "task-1")
        {
            var begun = await _broker.BeginTaskAsync(Caller, new BeginTaskCommand(
                task, "", ["tickets:read", "tickets:export"], "", TimeSpan.FromMinutes(5), "", new Dictionary<string, string>()), default);
            Assert.That(begun.Token, Is.Null, "waits for approval");
            return begun.Lease;
        }

        public async Task<List<AuditEventType>> TypesAsync(string leaseId) =>
            (await Log.ReadAsync(null, 1000, default)).Select(r => r.TryEvent()!).Where(e => e.LeaseId == leaseId).Select(e => e.Type).ToList();
    }

    /// <summary>The decider's audit: runs <see cref="OnDecision"/> (moves its clock) while an approval.decided record is appended.</summary>
    private sealed class SlowDecisions(IAuditEvents inner) : IAuditEvents
    {
        public Action? OnDecision { get; set; }

        public Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
        {
            if (auditEvent.Type == AuditEventType.ApprovalDecided && !auditEvent.Details.ContainsKey("applied"))
            {
                OnDecision?.Invoke();
            }

            return inner.RaiseAsync(auditEvent, cancellationToken);
        }
    }
}
