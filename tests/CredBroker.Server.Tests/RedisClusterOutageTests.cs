using System.Globalization;
using System.Net;
using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Losing part of a Redis Cluster (a real 3-master cluster on loopback, AOF on): kill -9 of one
/// master. Calls that need the lost master fail closed with UNAVAILABLE, every other agent keeps
/// working, the broker replicas (child processes) keep running and sweeping the other shards,
/// /readyz names the shards it cannot reach, and after the master restarts from its AOF everything
/// works again. With cluster-require-full-coverage yes (Redis's default) the whole cluster answers
/// CLUSTERDOWN: every call is UNAVAILABLE (never UNKNOWN) and no replica stops.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterOutageTests
{
    private const int AgentCount = 12;

    /// <summary>Twelve agents, spread by their id over the 16 shards (and so over the three masters).</summary>
    private static readonly string[] Agents = [.. Enumerable.Range(0, AgentCount).Select(i => $"cluster-agent-{i}")];

    private static string AgentsYaml => ClusterAgents.Yaml(Agents, "cluster outage test");

    private static string[] WorkloadArguments => ClusterAgents.WorkloadArguments(Agents);

    private static string Subject(int agent) => ClusterAgents.Subject(Agents[agent]);

    private static string ShardTag(int agent) => ClusterAgents.ShardTag(LeaseIds.ShardOf(Agents[agent]));

    [Test]
    public async Task OneMasterKilled_ItsAgentsGetUnavailable_OtherAgentsKeepWorking_ReplicasKeepRunning_AndAllRecoverFromAof()
    {
        using var cluster = RedisCluster.Start(appendOnly: true, fullCoverage: false);
        // The master to kill holds neither the audit chain nor the key schedule (every mint needs those).
        var victim = cluster.Nodes.First(n => n != cluster.MasterOf("cb:{audit}:log") && n != cluster.MasterOf("cb:signing:schedule"));
        var lost = Enumerable.Range(0, AgentCount).First(a => cluster.MasterOf(ShardTag(a)) == victim);
        var kept = Enumerable.Range(0, AgentCount).Where(a => cluster.MasterOf(ShardTag(a)) != victim).ToList();
        Assert.That(kept, Is.Not.Empty);

        await using var broker = new ProductionBroker(AgentsYaml);
        await broker.StartAsync(cluster.ConnectionString, WorkloadArguments);
        using var replica = await broker.StartReplicaProcessAsync(cluster.ConnectionString, WorkloadArguments);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress };

        // A lease on the doomed master that expires during the outage: swept after the master returns.
        using (var client = broker.ClientFor(Subject(lost)))
        {
            var early = Begin("before-outage", TimeSpan.FromSeconds(2));
            early.TaskId = "before-outage";
            await client.BeginTaskAsync(early);
        }

        victim.Kill();

        using (var client = broker.ClientFor(Subject(lost)))
        {
            var refused = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Begin("during-outage")));
            Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.Unavailable), refused.Status.Detail);
        }

        foreach (var agent in kept)
        {
            using var client = broker.ClientFor(Subject(agent));
            var begun = await client.BeginTaskAsync(Begin("during-outage"));
            Assert.That(begun.AccessToken, Is.Not.Empty, $"agent {agent} lives on a surviving master");
            Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.True);
            await client.CompleteTaskAsync(begun.LeaseId);
        }

        // The cluster marks the master failed (node timeout), the sweepers keep hitting the dead shards:
        // /readyz names them and stays ready for the shards that answer; no replica stops.
        var (status, body) = await Readyz.UntilAsync(http, (_, b) => LeaseStoreCheck(b).StartsWith("degraded", StringComparison.Ordinal));
        Assert.That(LeaseStoreCheck(body), Does.StartWith("degraded"), body);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body);
        cluster.WaitUntil(() => RedisCluster.Info(cluster.Nodes.First(n => n != victim)).Contains("cluster_state:ok", StringComparison.Ordinal),
            "the surviving masters never agreed on the failed one");
        using (var client = new Client.CredBrokerClient(replica.AgentAddress, () => broker.WorkloadToken(Subject(kept[0]))))
        {
            var begun = await client.BeginTaskAsync(Begin("replica-during-outage"));
            Assert.That(begun.AccessToken, Is.Not.Empty);
        }

        await Task.Delay(TimeSpan.FromSeconds(2)); // several sweeps (100 ms) over the dead shards; the replica must survive them
        Assert.That(replica.HasExited, Is.False, "a replica stopped on a partial Redis loss: " + replica.Output);

        victim.Restart();

        using (var client = broker.ClientFor(Subject(lost)))
        {
            var begun = await Unavailable.RetryAsync(() => client.BeginTaskAsync(Begin("after-outage")));
            Assert.That(begun.AccessToken, Is.Not.Empty);
        }

        (status, body) = await Readyz.UntilAsync(http, (s, b) => s == HttpStatusCode.OK && LeaseStoreCheck(b) == "ok");
        Assert.That(LeaseStoreCheck(body), Is.EqualTo("ok"), body);

        // The lease that fell due while its master was down is expired by a sweeper once it is back.
        using var operators = broker.OperatorClient();
        var leaseId = LeaseIds.For($"cluster-agent-{lost}", "before-outage");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await operators.GetLeaseAsync(leaseId)).State != "expired" && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.That((await operators.GetLeaseAsync(leaseId)).State, Is.EqualTo("expired"));
        Assert.That(replica.HasExited, Is.False, replica.Output);
    }

    [Test]
    public async Task WholeClusterDown_ClusterDownIsUnavailable_NeverUnknown_AndNoReplicaStops()
    {
        // Redis's default (full coverage): one master lost → every node answers CLUSTERDOWN.
        using var cluster = RedisCluster.Start(appendOnly: true, fullCoverage: true);
        var victim = cluster.Nodes.First(n => n != cluster.MasterOf("cb:{audit}:log") && n != cluster.MasterOf("cb:signing:schedule"));
        var kept = Enumerable.Range(0, AgentCount).First(a => cluster.MasterOf(ShardTag(a)) != victim);

        await using var broker = new ProductionBroker(AgentsYaml);
        await broker.StartAsync(cluster.ConnectionString, WorkloadArguments);
        using var replica = await broker.StartReplicaProcessAsync(cluster.ConnectionString, WorkloadArguments);

        victim.Kill();
        var survivor = cluster.Nodes.First(n => n != victim);
        cluster.WaitUntil(() => RedisCluster.Info(survivor).Contains("cluster_state:fail", StringComparison.Ordinal), "the cluster never noticed the lost master");

        using (var client = broker.ClientFor(Subject(kept)))
        {
            var refused = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Begin("clusterdown")));
            Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.Unavailable), refused.Status.Detail);
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{replica.HttpPort}") };
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.ServiceUnavailable), Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.That(replica.HasExited, Is.False, "a replica stopped on CLUSTERDOWN: " + replica.Output);

        victim.Restart();
        cluster.WaitUntil(() => RedisCluster.Info(survivor).Contains("cluster_state:ok", StringComparison.Ordinal), "the cluster never recovered");
        using (var client = new Client.CredBrokerClient(replica.AgentAddress, () => broker.WorkloadToken(Subject(kept))))
        {
            var begun = await Unavailable.RetryAsync(() => client.BeginTaskAsync(Begin("after-clusterdown")));
            Assert.That(begun.AccessToken, Is.Not.Empty);
        }
    }

    [Test]
    public async Task ABackgroundServiceThatFails_StopsTheReplica_WithANonZeroExitCode()
    {
        // Not an outage but corrupt data: the key schedule key holds a string, so reading it answers
        // WRONGTYPE (a bug-class error no retry fixes). The key schedule service fails, the host stops,
        // and the exit code says so (an orchestrator restarts it and shows the crash loop).
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        using var replica = await broker.StartReplicaProcessAsync(redis.ConnectionString, "--CredBroker:Signing:ScheduleRefreshInterval=00:00:00.200");
        using (var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            await admin.GetDatabase().KeyDeleteAsync("cb:signing:schedule");
            await admin.GetDatabase().StringSetAsync("cb:signing:schedule", "not a hash");
        }

        Assert.That(replica.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, "the replica kept running with a failed background service: " + replica.Output);
        Assert.That(replica.ExitCode, Is.EqualTo(Hosting.BrokerApp.BackgroundServiceFailedExitCode), replica.Output);
    }

    private static BeginTaskRequest Begin(string task, TimeSpan? ttl = null) => new()
    {
        TaskId = task + "-" + Guid.NewGuid().ToString("N")[..8],
        Scopes = { "tickets:read" },
        Audience = "tickets-api",
        Ttl = Duration.FromTimeSpan(ttl ?? TimeSpan.FromMinutes(5)),
    };

    private static string LeaseStoreCheck(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("checks").TryGetProperty("lease_store", out var check) ? check.GetString() ?? "" : "";
    }
}
