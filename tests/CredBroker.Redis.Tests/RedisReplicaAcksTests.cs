using System.Security.Cryptography;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>
/// WAIT after the writes that end access, against a real primary and replica on loopback: with the
/// replica up they are acknowledged (and on the replica); with it paused or killed they fail as
/// unavailable — and stay in force on the primary; a retry once the replica is back succeeds.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisReplicaAcksTests
{
    /// <summary>Generous, for a busy 2-core machine: where an acknowledgement is expected, it must not miss a 500 ms window.</summary>
    private static readonly RedisConnectionOptions Patient = new() { Timeout = TimeSpan.FromSeconds(10) };
    private static readonly RedisReplicaAcks OneReplica = new(1, TimeSpan.FromSeconds(5));

    /// <summary>Where no acknowledgement can come (replica paused or killed), a short wait keeps the test quick.</summary>
    private static readonly RedisReplicaAcks OneReplicaQuickly = new(1, TimeSpan.FromMilliseconds(500));
    private RedisReplicaSet _set = null!;

    [SetUp]
    public void Start() => _set = RedisReplicaSet.Start(replicas: 1);

    [TearDown]
    public void Stop() => _set.Dispose();

    private RedisLeaseStore Connect(RedisReplicaAcks? acks = null) => RedisLeaseStore.Connect(_set.Primary.ConnectionString, connection: Patient, replicaAcks: acks ?? OneReplica);

    [Test]
    public async Task ReplicaUp_RevokeCompleteAndQuarantine_AreAcknowledged_AndOnTheReplica()
    {
        using var store = Connect();
        var (revoked, completed) = (TestLeases.New("agent-w"), TestLeases.New("agent-w"));
        await TestLeases.WhenAvailable(() => store.OpenAsync(revoked, LeaseQuota.Unlimited, default));
        await store.OpenAsync(completed, LeaseQuota.Unlimited, default);

        Assert.That((await store.RevokeAsync(revoked.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default)).Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That((await store.CompleteAsync(completed.LeaseId, null, DateTimeOffset.UtcNow, null, default)).Outcome, Is.EqualTo(TransitionOutcome.Applied));
        await store.QuarantineAgentAsync("agent-q", "r", "ops", DateTimeOffset.UtcNow, default);

        // WAIT returned: the replica has applied the writes (it is read directly, not through the primary).
        using var replica = ConnectionMultiplexer.Connect(_set.Replicas[0].ConnectionString);
        var db = replica.GetDatabase();
        Assert.That((string?)await db.HashGetAsync(RedisKeys.Lease(LeaseIds.ShardOf("agent-w"), revoked.LeaseId), "state"), Is.EqualTo("revoked"));
        Assert.That((string?)await db.HashGetAsync(RedisKeys.Lease(LeaseIds.ShardOf("agent-w"), completed.LeaseId), "state"), Is.EqualTo("completed"));
        Assert.That(await db.KeyExistsAsync(RedisKeys.Quarantine("agent-q")), Is.True);
    }

    [Test]
    public async Task ReplicaPaused_RevokeIsUnavailable_ButStaysRevoked_AndOtherCallsAreNotHeldUp()
    {
        using var store = Connect(OneReplicaQuickly);
        var lease = TestLeases.New("agent-p");
        var other = TestLeases.New("agent-p");
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        _set.Replicas[0].Pause();
        try
        {
            var e = Assert.ThrowsAsync<StoreUnavailableException>(() => store.RevokeAsync(lease.LeaseId, "compromised", "ops", DateTimeOffset.UtcNow, null, default));
            Assert.That(e!.Message, Does.Contain("0 of 1").And.Contain("in force"));
            Assert.That((await store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Revoked), "not rolled back");
            Assert.That((await store.OpenAsync(other, LeaseQuota.Unlimited, default)).Created, Is.True, "writes without WAIT go on");
            Assert.ThrowsAsync<StoreUnavailableException>(() => store.RevokeAsync(lease.LeaseId, "retry", "ops", DateTimeOffset.UtcNow, null, default),
                "a retry while the replica is still away is not acknowledged either");
        }
        finally
        {
            _set.Replicas[0].Resume();
        }

        var retried = await TestLeases.WhenAvailable(() => store.RevokeAsync(lease.LeaseId, "retry", "ops", DateTimeOffset.UtcNow, null, default));
        Assert.That(retried.Outcome, Is.EqualTo(TransitionOutcome.NotApplicable), "already revoked; this time the replica confirmed it");
        Assert.That(retried.Lease!.State, Is.EqualTo(LeaseState.Revoked));
    }

    [Test]
    public async Task ARetryThroughAnotherConnection_ThatFindsAnUnconfirmedWrite_IsNotConfirmedUntilTheReplicaHasIt()
    {
        // Two broker replicas (two stores, each with its own connections). The first one's writes are in force on the
        // primary but unconfirmed (replica paused); the client retries on the second one, whose scripts find them
        // ('existing', 'unchanged', already quarantined) and write nothing. Its WAIT must still not confirm them: Redis
        // (7.0 here) makes a WAIT wait for the primary's replication offset as of the connection's last command, not only
        // for that connection's own writes, so the retry is confirmed only once the replica holds what it found.
        var quickly = OneReplicaQuickly with { AllLeaseWrites = true };
        using var first = Connect(quickly);
        using var second = Connect(quickly);
        var lease = TestLeases.New("agent-retry");
        var revoked = TestLeases.New("agent-retry");
        await TestLeases.WhenAvailable(() => second.OpenAsync(revoked, LeaseQuota.Unlimited, default));

        _set.Replicas[0].Pause();
        try
        {
            Assert.ThrowsAsync<StoreUnavailableException>(() => first.OpenAsync(lease, LeaseQuota.Unlimited, default));
            Assert.ThrowsAsync<StoreUnavailableException>(() => second.OpenAsync(lease, LeaseQuota.Unlimited, default), "the replayed open found the lease the replica does not have");
            Assert.ThrowsAsync<StoreUnavailableException>(() => first.RevokeAsync(revoked.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default));
            Assert.ThrowsAsync<StoreUnavailableException>(() => second.RevokeAsync(revoked.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default), "the retried revoke found it revoked, unconfirmed");
            Assert.ThrowsAsync<StoreUnavailableException>(() => first.QuarantineAgentAsync("agent-rq", "r", "ops", DateTimeOffset.UtcNow, default));
            Assert.ThrowsAsync<StoreUnavailableException>(() => second.QuarantineAgentAsync("agent-rq", "r", "ops", DateTimeOffset.UtcNow, default), "already quarantined, unconfirmed");
        }
        finally
        {
            _set.Replicas[0].Resume();
        }

        // Once the replica is back the same retries are confirmed.
        Assert.That((await TestLeases.WhenAvailable(() => second.OpenAsync(lease, LeaseQuota.Unlimited, default))).Created, Is.False);
        Assert.That((await second.RevokeAsync(revoked.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default)).Outcome, Is.EqualTo(TransitionOutcome.NotApplicable));
        using var replica = ConnectionMultiplexer.Connect(_set.Replicas[0].ConnectionString);
        Assert.That(await replica.GetDatabase().KeyExistsAsync(RedisKeys.Lease(LeaseIds.ShardOf("agent-retry"), lease.LeaseId)), Is.True);
    }

    [Test]
    public async Task AuditAppends_WaitForTheReplica_AndFailClosedWhileItIsAway()
    {
        // Found by the chaos run: without WAIT a Sentinel failover rolled the chain back past records whose actions had gone ahead.
        var signer = new HmacAuditSigner(RandomNumberGenerator.GetBytes(32));
        using var audit = RedisAuditLog.Connect(_set.Primary.ConnectionString, signer, new AuditLogOptions { CheckpointInterval = 5 }, connection: Patient, replicaAcks: OneReplica);
        await TestLeases.WhenAvailable(() => TryAppend(audit, 1));
        await Task.WhenAll(Enumerable.Range(2, 9).Select(i => audit.AppendAsync(Event(i), default)));

        // Acknowledged: the replica holds the chain's head (read directly from the replica).
        var head = (await audit.GetStateAsync(default)).HeadSequence;
        using var replica = ConnectionMultiplexer.Connect(_set.Replicas[0].ConnectionString);
        Assert.That((long)await replica.GetDatabase().HashGetAsync(audit.HeadKey, "seq"), Is.EqualTo(head));
        Assert.That(head, Is.GreaterThanOrEqualTo(10));

        _set.Replicas[0].Pause();
        try
        {
            var e = Assert.ThrowsAsync<AuditUnavailableException>(() => audit.AppendAsync(Event(11), default));
            Assert.That(e!.Message, Does.Contain("0 of 1"));
        }
        finally
        {
            _set.Replicas[0].Resume();
        }

        var after = await TestLeases.WhenAvailable(() => TryAppend(audit, 12));
        Assert.That(after.Sequence, Is.GreaterThanOrEqualTo(head + 2), "the unconfirmed record stays in the chain (its action did not go ahead)");
        Assert.That((await AuditVerifier.VerifyAsync(audit, [signer], null, default)).Intact, Is.True);
    }

    private static async Task<AuditRecord> TryAppend(RedisAuditLog audit, int i)
    {
        try
        {
            return await audit.AppendAsync(Event(i), default);
        }
        catch (AuditUnavailableException e)
        {
            throw new StoreUnavailableException(e.Message, e);
        }
    }

    private static AuditEvent Event(int i) => new() { Type = AuditEventType.TokenMinted, Time = DateTimeOffset.UtcNow, TaskId = "t" + i };

    [Test]
    public async Task ReplicaKilled_CompleteAndQuarantineAreUnavailable_ButInForce()
    {
        using var store = Connect(OneReplicaQuickly);
        var lease = TestLeases.New("agent-k");
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        _set.Replicas[0].Kill();

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.CompleteAsync(lease.LeaseId, null, DateTimeOffset.UtcNow, null, default));
        Assert.ThrowsAsync<StoreUnavailableException>(() => store.QuarantineAgentAsync("agent-k", "r", "ops", DateTimeOffset.UtcNow, default));
        Assert.That((await store.GetAsync(lease.LeaseId, default))!.State, Is.EqualTo(LeaseState.Completed));
        Assert.That(await store.GetAgentStatusAsync("agent-k", default), Is.Not.Null, "the agent is quarantined all the same");

        _set.Replicas[0].Restart();
        _set.WaitForLinks(_set.Replicas);
        Assert.That(await TestLeases.WhenAvailable(() => store.QuarantineAgentAsync("agent-k", "again", "ops", DateTimeOffset.UtcNow, default)), Is.Zero);
    }

    [Test]
    public async Task MoreReplicasThanThereAre_NeverAcknowledges()
    {
        using var store = Connect(new RedisReplicaAcks(2, TimeSpan.FromMilliseconds(200)));
        var lease = TestLeases.New("agent-2");
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        var e = Assert.ThrowsAsync<StoreUnavailableException>(() => store.RevokeAsync(lease.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default));

        Assert.That(e!.Message, Does.Match("[01] of 2 acknowledged"), "the one replica may or may not have answered within the short wait; two never do");
    }

}

/// <summary>Replica-ack settings that cannot work are refused before anything connects.</summary>
public sealed class RedisReplicaAcksSettingsTests
{
    [TestCase(0, 500)]
    [TestCase(1, 0)]
    [TestCase(1, 2000)]
    public void SettingsThatCannotWork_AreRefusedAtConnect(int replicas, int waitMilliseconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RedisLeaseStore.Connect("127.0.0.1:1", replicaAcks: new RedisReplicaAcks(replicas, TimeSpan.FromMilliseconds(waitMilliseconds))));
    }
}
