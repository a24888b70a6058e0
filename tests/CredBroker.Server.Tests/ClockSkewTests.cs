using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Server.Tests;

/// <summary>
/// One clock: a replica whose wall clock runs 30 s ahead of or behind the others (a real child
/// process under Debian's libfaketime) decides lease deadlines, expiry and introspection on Redis's
/// clock, within the documented bound (docs/reliability.md): it neither expires a lease early nor
/// keeps it valid late. The control case (Clock:Source=system) shows the skew the test would see.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ClockSkewTests
{
    /// <summary>The documented bound on how far a replica's decisions may be from Redis's clock (docs/reliability.md).</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromMilliseconds(500);

    private const string Triage = "system:serviceaccount:support:triage";
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(30);

    [Test]
    public async Task AReplicaAhead_OpensLeasesWithTheTrueDeadline_AndNeverExpiresThemEarly()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var ahead = await broker.StartReplicaProcessAsync(redis.ConnectionString, BrokerProcess.SkewedClock(Skew));
        using var client = new Client.CredBrokerClient(ahead.AgentAddress, () => broker.WorkloadToken(Triage));

        var ttl = TimeSpan.FromSeconds(6);
        var before = DateTimeOffset.UtcNow;
        var begun = await client.BeginTaskAsync(Begin(ttl));
        var after = DateTimeOffset.UtcNow;
        var deadline = begun.LeaseDeadline.ToDateTimeOffset();
        Assert.That(deadline, Is.InRange(before + ttl - Bound, after + ttl + Bound), "the skewed replica set the deadline on its own clock");
        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.True, "the skewed replica judged its fresh token expired");

        // Until just before the deadline the lease stays active on every replica (the skewed one sweeps too).
        using var operators = broker.OperatorClient();
        // An answer counts only when it came back before the bound: the replica judged at or before that moment (on a busy
        // machine a call sent earlier can be answered after it, and then "expired" is right). The token's own exp is
        // whole seconds (JWT NumericDate, truncated), so the token ends up to 1 s before the lease's millisecond deadline.
        var tokenExp = DateTimeOffset.FromUnixTimeSeconds(deadline.ToUnixTimeSeconds());
        while (DateTimeOffset.UtcNow < deadline - Bound)
        {
            var state = (await operators.GetLeaseAsync(begun.LeaseId)).State;
            var answered = DateTimeOffset.UtcNow;
            Assert.That(state == "active" || answered >= deadline - Bound, Is.True, $"expired early at {answered:O}, deadline {deadline:O}");
            var active = (await client.IntrospectAsync(begun.AccessToken)).Active;
            answered = DateTimeOffset.UtcNow;
            Assert.That(active || answered >= tokenExp - Bound, Is.True,
                $"the skewed replica's introspection expired it early (answered {answered:O}, token exp {tokenExp:O}, lease deadline {deadline:O})");
            await Task.Delay(250);
        }

        // After it the lease ends within the sweep interval plus the bound.
        while ((await operators.GetLeaseAsync(begun.LeaseId)).State == "active")
        {
            Assert.That(DateTimeOffset.UtcNow, Is.LessThan(deadline + TimeSpan.FromSeconds(1) + Bound), "not expired within 1 s of its deadline");
            await Task.Delay(50);
        }

        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.False);
    }

    [Test]
    public async Task AReplicaBehind_DoesNotKeepATokenValidPastItsDeadline()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var behind = await broker.StartReplicaProcessAsync(redis.ConnectionString, BrokerProcess.SkewedClock(-Skew));
        using var client = broker.ClientFor(Triage);
        using var skewed = new Client.CredBrokerClient(behind.AgentAddress, () => broker.WorkloadToken(Triage));

        var begun = await client.BeginTaskAsync(Begin(TimeSpan.FromSeconds(3)));
        var deadline = begun.LeaseDeadline.ToDateTimeOffset();
        // Sanity check that the replica accepts the fresh token at all. Seen once in about ten runs: right after start the
        // replica behind answered inactive for a moment (open: possibly state it computed before its first clock sample,
        // e.g. the key schedule, kept until its next refresh; see the closing note of issue 17), so it may take a few tries.
        var accepted = false;
        for (var attempt = 0; attempt < 20 && !accepted && DateTimeOffset.UtcNow < deadline - Bound; attempt++)
        {
            accepted = (await skewed.IntrospectAsync(begun.AccessToken)).Active;
            if (!accepted)
            {
                await Task.Delay(100);
            }
        }

        Assert.That(accepted, Is.True, "the replica behind never accepted the fresh token");
        while (DateTimeOffset.UtcNow < deadline + Bound)
        {
            await Task.Delay(100);
        }

        Assert.That((await skewed.IntrospectAsync(begun.AccessToken)).Active, Is.False, "the replica behind kept the token valid past its deadline");
    }

    [Test]
    public async Task Control_WithTheSystemClock_TheReplicaAheadExpiresLeasesEarly()
    {
        // Proves the two tests above can see skew: without the Redis clock the replica ahead sweeps a
        // 6 s lease at once (its clock says the deadline passed 24 s ago).
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString, "--CredBroker:Clock:Source=system");
        using var ahead = await broker.StartReplicaProcessAsync(redis.ConnectionString, BrokerProcess.SkewedClock(Skew), "--CredBroker:Clock:Source=system");
        using var client = broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Begin(TimeSpan.FromSeconds(6)));
        var deadline = begun.LeaseDeadline.ToDateTimeOffset();
        using var operators = broker.OperatorClient();
        while ((await operators.GetLeaseAsync(begun.LeaseId)).State == "active" && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.That(DateTimeOffset.UtcNow, Is.LessThan(deadline - Bound), "the skewed replica did not expire the lease early: the test could not see skew");
    }

    private static BeginTaskRequest Begin(TimeSpan ttl) => new()
    {
        TaskId = "skew-" + Guid.NewGuid().ToString("N"),
        Scopes = { "tickets:read" },
        Audience = "tickets-api",
        Ttl = Duration.FromTimeSpan(ttl),
    };
}
