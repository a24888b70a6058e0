using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using StackExchange.Redis;

namespace CredBroker.Server.Tests;

/// <summary>
/// Faults with real processes: a broker replica SIGKILLed right after minting, Redis SIGKILLed
/// right after a revoke was acknowledged. The promise holds: leases end on time, revocations stick.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class FaultTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    [Test]
    public async Task ReplicaKilledRightAfterMinting_ItsLeasesStillExpireOnTime_ThroughTheOtherReplica()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var survivor = new ProductionBroker();
        await survivor.StartAsync(redis.ConnectionString);
        using var doomed = await survivor.StartReplicaProcessAsync(redis.ConnectionString);

        using var client = new Client.CredBrokerClient(doomed.AgentAddress, () => survivor.WorkloadToken(Triage));
        var leases = new List<BeginTaskResponse>();
        for (var i = 0; i < 5; i++)
        {
            leases.Add(await client.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = $"doomed-{i}-{Guid.NewGuid():N}",
                Scopes = { "tickets:read" },
                Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(3)),
            }));
        }

        doomed.Kill();

        using var redisClient = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        foreach (var lease in leases)
        {
            Assert.That(await redisClient.GetDatabase().SortedSetScoreAsync(LeaseLifecycleTests.DeadlineIndexOf(lease.LeaseId), lease.LeaseId), Is.Not.Null,
                "the killed replica's leases are in the deadline index, waiting for another replica");
        }

        var latestDeadline = leases.Max(l => l.LeaseDeadline.ToDateTimeOffset());
        foreach (var lease in leases)
        {
            // Swept = taken off the deadline index by a surviving replica's claim.
            while (await redisClient.GetDatabase().SortedSetScoreAsync(LeaseLifecycleTests.DeadlineIndexOf(lease.LeaseId), lease.LeaseId) is not null)
            {
                Assert.That(DateTimeOffset.UtcNow, Is.LessThan(latestDeadline.AddSeconds(1)),
                    $"lease {lease.LeaseId} of the killed replica was not expired within 1 s of its deadline");
                await Task.Delay(20);
            }
        }

        using var operators = survivor.OperatorClient();
        foreach (var lease in leases)
        {
            Assert.That((await operators.GetLeaseAsync(lease.LeaseId)).State, Is.EqualTo("expired"));
        }

        using var validator = survivor.ClientFor(Triage);
        foreach (var lease in leases)
        {
            Assert.That((await validator.IntrospectAsync(lease.AccessToken)).Active, Is.False);
        }
    }

    [Test]
    public async Task RedisKilledRightAfterAnAcknowledgedRevoke_RestartsFromAof_AndTheTokenStaysInactive()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        var begun = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "durable-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });

        var revoked = await operators.RevokeLeaseAsync(begun.LeaseId, "compromised");
        Assert.That(revoked.Changed, Is.True);
        redis.Kill();
        redis.Restart();

        var introspection = await Unavailable.RetryAsync(() => client.IntrospectAsync(begun.AccessToken));
        Assert.That(introspection.Active, Is.False, "the acknowledged revoke survived the crash");
        var lease = await Unavailable.RetryAsync(() => operators.GetLeaseAsync(begun.LeaseId));
        Assert.That(lease.State, Is.EqualTo("revoked"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var e in client.WatchRevocationsAsync(cancellationToken: cts.Token))
        {
            if (e.LeaseId == begun.LeaseId)
            {
                Assert.That(e.Cause, Is.EqualTo("revoked"));
                return;
            }
        }

        Assert.Fail("the revocation event is missing from the feed after the restart");
    }

    [Test]
    public async Task RedisDown_OperatorRevokeIsUnavailable_AndNothingIsHalfWritten()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        var begun = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "outage-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });

        redis.Kill();
        var error = Assert.ThrowsAsync<RpcException>(() => operators.RevokeLeaseAsync(begun.LeaseId, "during outage"));
        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        redis.Restart();

        var lease = await Unavailable.RetryAsync(() => operators.GetLeaseAsync(begun.LeaseId));
        Assert.That(lease.State, Is.EqualTo("active"), "the failed revoke changed nothing");
        // The audit log has its own Redis connection, which may reconnect later than the lease store's: a revoke
        // sent in between would end the lease, fail on its audit record and be retried by the client, and the
        // retry would report changed = false (documented on RevokeLeaseResponse). Wait until both are back.
        Assert.That((await Unavailable.RetryAsync(() => operators.VerifyAuditAsync())).Intact, Is.True);
        Assert.That((await operators.RevokeLeaseAsync(begun.LeaseId, "after outage")).Changed, Is.True, "and it can simply be retried");
    }
}
