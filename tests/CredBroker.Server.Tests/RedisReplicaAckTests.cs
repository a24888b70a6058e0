using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// CredBroker:Redis:WaitReplicas through the broker, with a real primary and replica: a revoke the
/// replica cannot confirm is UNAVAILABLE to the operator, yet the token is already inactive (the
/// revocation is never rolled back), and the operator's retry succeeds once the replica is back.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisReplicaAckTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    [Test]
    public async Task ReplicaPaused_RevokeIsUnavailable_TokenIsInactiveAnyway_RetrySucceedsAfterResume()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(set.Primary.ConnectionString, "--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitTimeout=00:00:00.500");
        using var client = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        var begun = await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "wait-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));
        // (WaitTimeout is short here: with the replica paused no acknowledgement can come; the retry below tolerates a slow one.)

        set.Replicas[0].Pause();
        try
        {
            var error = Assert.ThrowsAsync<RpcException>(() => operators.RevokeLeaseAsync(begun.LeaseId, "compromised"));
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
            Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.False, "the revocation is in force on the primary");
            Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("revoked"));
            var other = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "meanwhile-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
            Assert.That(other.AccessToken, Is.Not.Empty, "minting does not wait for replicas");
        }
        finally
        {
            set.Replicas[0].Resume();
        }

        var retried = await Unavailable.RetryAsync(() => operators.RevokeLeaseAsync(begun.LeaseId, "compromised"));
        Assert.That(retried.Changed, Is.False, "already revoked; this time the replica confirmed it");
    }

    [Test]
    public async Task WithWaitForLeaseWrites_AMintWaitsForTheReplica_LeaseAndAuditRecord_AndFailsClosedWhileItIsAway()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(set.Primary.ConnectionString, "--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitTimeout=00:00:00.500",
            "--CredBroker:Redis:WaitForLeaseWrites=true");
        using var client = broker.ClientFor(Triage);
        await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "acked-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));

        set.Replicas[0].Pause();
        try
        {
            var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "away-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable), "no token whose lease and audit record a failover could lose");
        }
        finally
        {
            set.Replicas[0].Resume();
        }

        var after = await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "back-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));
        Assert.That(after.AccessToken, Is.Not.Empty);
    }

    /// <summary>The configuration the chart renders for redis.mode=sentinel: the broker finds the primary through the Sentinels.</summary>
    [Test]
    public async Task ThroughSentinels_TheBrokerMintsAndRevokes_WithReplicaAcks()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(set.SentinelConfiguration, "--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitTimeout=00:00:05", "--CredBroker:Redis:Timeout=00:00:10");
        using var client = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();

        var begun = await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "sentinel-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));
        var revoked = await operators.RevokeLeaseAsync(begun.LeaseId, "done");

        Assert.That(revoked.Changed, Is.True);
        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.False);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = TimeSpan.FromSeconds(20) };
        Assert.That((int)(await http.GetAsync("/readyz")).StatusCode, Is.EqualTo(200));
    }
}
