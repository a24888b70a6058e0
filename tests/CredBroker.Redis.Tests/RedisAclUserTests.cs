using System.Security.Cryptography;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>
/// A redis-server whose default user is off and whose only user is an ACL user limited to the
/// broker's keys and command categories (the ACL docs/operations.md recommends): the store and
/// the audit log work as that user, over RESP2 and RESP3; a wrong user or password fails closed.
/// </summary>
[TestFixture("resp2")]
[TestFixture("resp3")]
[NonParallelizable]
public sealed class RedisAclUserTests(string protocol)
{
    private const string User = "credbroker";
    private const string Password = "acl-s3cret,with=separators";
    private RedisServer _redis = null!;

    /// <summary>The ACL of docs/operations.md, as redis-server arguments.</summary>
    public static string AclArguments(string user, string password) =>
        $"--user default off --user {user} on \">{password}\" ~cb:* resetchannels &__Booksleeve_MasterChanged -@all +@read +@write +@scripting +@stream +@connection +@transaction -@dangerous +info +time";

    [OneTimeSetUp]
    public void Start() => _redis = RedisServer.Start(appendOnly: false, RedisServer.FreePort(), AclArguments(User, Password));

    [OneTimeTearDown]
    public void Stop() => _redis.Dispose();

    private string Configuration => _redis.ConnectionString + ",protocol=" + protocol;

    [Test]
    public async Task StoreAndAuditLog_WorkAsTheAclUser()
    {
        var connection = new RedisConnectionOptions { User = User, Password = Password };
        using var store = RedisLeaseStore.Connect(Configuration, connection: connection);
        using var audit = RedisAuditLog.Connect(Configuration, new HmacAuditSigner(RandomNumberGenerator.GetBytes(32)), connection: connection);
        var lease = TestLeases.New();

        var opened = await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        var revoked = await store.RevokeAsync(lease.LeaseId, "r", "ops", DateTimeOffset.UtcNow, null, default);
        var feed = await store.ReadRevocationsAsync(null, 10, default);
        await store.QuarantineAgentAsync("agent-q", "r", "ops", DateTimeOffset.UtcNow, default);
        var appended = await audit.AppendAsync(new AuditEvent { Type = AuditEventType.LeaseRevoked, Time = DateTimeOffset.UtcNow, LeaseId = lease.LeaseId }, default);
        var claimed = await store.ClaimExpiredAsync(0, DateTimeOffset.UtcNow, 10, default);

        Assert.That(opened.Created, Is.True);
        Assert.That(revoked.Outcome, Is.EqualTo(TransitionOutcome.Applied));
        Assert.That(feed.Events.Select(e => e.LeaseId), Does.Contain(lease.LeaseId));
        Assert.That(await store.GetAgentStatusAsync("agent-q", default), Is.Not.Null);
        Assert.That(appended.Sequence, Is.EqualTo(1));
        Assert.That((await audit.GetStateAsync(default)).HeadSequence, Is.EqualTo(1));
        Assert.That(claimed, Is.Empty);
    }

    [Test]
    public async Task AGrowingAuditChainWithRetention_AndCompletions_WorkAsTheAclUser()
    {
        // Regression: the audit append's retention looked at the clock with TIME, which the documented ACL does not
        // grant: with more than one record and an age limit, every append failed as that user.
        var connection = new RedisConnectionOptions { User = User, Password = Password };
        using var store = RedisLeaseStore.Connect(Configuration, connection: connection);
        var options = new AuditLogOptions { CheckpointInterval = 5, MaxAge = TimeSpan.FromMilliseconds(300), MaxRecords = 20 };
        using var audit = RedisAuditLog.Connect(Configuration, new HmacAuditSigner(RandomNumberGenerator.GetBytes(32)), options, keyPrefix: "cb:{audit-acl-" + protocol + "}:", connection: connection);
        var lease = TestLeases.New();
        await TestLeases.WhenAvailable(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        var completed = await store.CompleteAsync(lease.LeaseId, lease.AgentId, DateTimeOffset.UtcNow, null, default);
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => audit.AppendAsync(new AuditEvent { Type = AuditEventType.TokenMinted, Time = DateTimeOffset.UtcNow, TaskId = "t" + i }, default)));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await audit.GetStateAsync(default)).AnchorSequence < 20 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            await audit.AppendAsync(new AuditEvent { Type = AuditEventType.TokenMinted, Time = DateTimeOffset.UtcNow }, default);
        }

        Assert.That((completed.Outcome, completed.Children), Is.EqualTo((TransitionOutcome.Applied, (IReadOnlyList<string>)[])));
        Assert.That((await audit.GetStateAsync(default)).AnchorSequence, Is.GreaterThanOrEqualTo(20), "retention ran as the ACL user");
    }

    [Test]
    public async Task TheUserFromTheConnectionString_WorksToo()
    {
        using var store = RedisLeaseStore.Connect(Configuration + ",user=" + User, connection: new RedisConnectionOptions { Password = Password });

        Assert.That(await TestLeases.WhenAvailable(() => store.GetAsync(LeaseIds.For("agent-a", "absent"), default)), Is.Null);
    }

    [TestCase("default", Password)]
    [TestCase(User, "wrong")]
    [TestCase("nobody", Password)]
    public void WrongUserOrPassword_FailsClosed(string user, string password)
    {
        using var store = RedisLeaseStore.Connect(Configuration, connection: new RedisConnectionOptions { User = user, Password = password });

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(LeaseIds.For("agent-a", "t1"), default));
    }

    [Test]
    public async Task TheAclKeepsTheUserToTheBrokersKeys()
    {
        // Sanity check of the fixture: the user really is restricted (every key the broker uses starts with cb:).
        using var raw = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(new RedisConnectionOptions { User = User, Password = Password }.Configure(Configuration));
        var e = Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(() => raw.GetDatabase().StringSetAsync("other:key", "x"));
        Assert.That(e!.Message, Does.Contain("NOPERM"));
    }
}
