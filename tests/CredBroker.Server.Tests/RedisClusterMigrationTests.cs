using System.Collections.Concurrent;
using System.Globalization;
using CredBroker.Contracts.V1;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// A MOVED/ASK storm on a real 3-master Redis Cluster (AOF on): the hash slot of one agent's shard is migrated
/// to another master and back, twice, the way <c>redis-cli --cluster reshard</c> does it (IMPORTING/MIGRATING,
/// MIGRATE of its keys a few at a time, SETSLOT NODE), while clients run BeginTask and CompleteTask for that
/// agent and for one on another shard. While the slot is in motion the lease scripts get ASK, TRYAGAIN and
/// MOVED: every call must succeed or answer UNAVAILABLE (retryable), never UNKNOWN or INTERNAL; no acknowledged
/// lease or completion is lost; and once the slot is home every unfinished task completes on a retry.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterMigrationTests
{
    private static readonly string[] Agents = ["migrating-agent", "steady-agent"];

    private static string AgentsYaml => ClusterAgents.Yaml(Agents, "slot migration test", "max_concurrent_leases: 1000", "max_tasks_per_minute: 1000000");

    private static string[] WorkloadArguments => ClusterAgents.WorkloadArguments(Agents);

    private static string Subject(string agent) => ClusterAgents.Subject(agent);

    private static string ShardTag(string agent) => ClusterAgents.ShardTag(LeaseIds.ShardOf(agent));

    /// <param name="withReplicas">
    /// One replica per master and the brokers on WaitReplicas=1 + WaitForLeaseWrites: every write is followed by WAIT,
    /// so no redirect is followed (an ASK-carried write could not be confirmed) and the retry after a MOVED is exercised.
    /// </param>
    [TestCase(false)]
    [TestCase(true)]
    [CancelAfter(240_000)]
    public async Task ShardSlotMigratedBackAndForth_WhileTasksRun_CallsSucceedOrAreUnavailable_AndNothingAcknowledgedIsLost(bool withReplicas)
    {
        Assume.That(LeaseIds.ShardOf(Agents[0]), Is.Not.EqualTo(LeaseIds.ShardOf(Agents[1])), "the two agents must live in different shards");
        using var cluster = RedisCluster.Start(replicasPerMaster: withReplicas ? 1 : 0, appendOnly: true, fullCoverage: false);
        var slot = RedisCluster.SlotOf(ShardTag(Agents[0]));
        var home = cluster.MasterOf(ShardTag(Agents[0]));
        var away = cluster.Masters().First(m => m != home);

        await using var broker = new ProductionBroker(AgentsYaml);
        await broker.StartAsync(cluster.ConnectionString,
            withReplicas ? [.. WorkloadArguments, "--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitForLeaseWrites=true"] : WorkloadArguments);

        var statuses = new ConcurrentQueue<(string Agent, string Call, StatusCode Status, string Detail)>();
        var begun = new ConcurrentQueue<(string Agent, string LeaseId)>();
        var completed = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();

        async Task<T?> Call<T>(string agent, string call, Func<Task<T>> action)
            where T : class
        {
            try
            {
                var result = await action();
                statuses.Enqueue((agent, call, StatusCode.OK, ""));
                return result;
            }
            catch (RpcException e)
            {
                statuses.Enqueue((agent, call, e.StatusCode, e.Status.Detail));
                return null;
            }
        }

        async Task Work(string agent, int worker)
        {
            using var client = broker.ClientFor(Subject(agent));
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var opened = await Call(agent, "BeginTask", () => client.BeginTaskAsync(Begin($"w{worker}-{i}")));
                if (opened is null)
                {
                    await Task.Delay(20);
                    continue;
                }

                begun.Enqueue((agent, opened.LeaseId));
                if (await Call(agent, "CompleteTask", () => client.CompleteTaskAsync(opened.LeaseId)) is { State: "completed" })
                {
                    completed.Enqueue(opened.LeaseId);
                }
            }
        }

        var workers = new[] { Work(Agents[0], 0), Work(Agents[0], 1), Work(Agents[1], 2) };
        var migrations = Task.Run(() =>
        {
            for (var round = 0; round < 2; round++)
            {
                cluster.MigrateSlot(slot, home, away, TimeSpan.FromMilliseconds(150), batch: 2);
                cluster.MigrateSlot(slot, away, home, TimeSpan.FromMilliseconds(150), batch: 2);
            }
        });
        try
        {
            await migrations;
            // Calls after the storm: the client has followed the last MOVED.
            var before = begun.Count(b => b.Agent == Agents[0]);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (begun.Count(b => b.Agent == Agents[0]) < before + 5 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        await TestContext.Out.WriteLineAsync("Answers: " + string.Join(", ", statuses.GroupBy(s => $"{s.Agent} {s.Call} {s.Status} {s.Detail}").Select(g => $"{g.Key} × {g.Count()}")));
        var wrong = statuses.Where(s => s.Status is not (StatusCode.OK or StatusCode.Unavailable)).ToList();
        Assert.That(wrong, Is.Empty, "calls must succeed or be UNAVAILABLE while a slot migrates: "
            + string.Join("; ", wrong.Take(5).Select(w => $"{w.Agent} {w.Call} {w.Status} {w.Detail}")));
        Assert.That(statuses.Count(s => s.Agent == Agents[0] && s.Status == StatusCode.OK), Is.GreaterThan(0), "the migrating agent never got an answer");
        Assert.That(statuses.Count(s => s.Agent == Agents[1] && s.Status == StatusCode.OK), Is.GreaterThan(0), "the steady agent never got an answer");
        Assert.That(cluster.MasterOf(ShardTag(Agents[0])), Is.EqualTo(home), "the slot is home again");
        Assert.That(RedisCluster.Command(away, "cluster", "countkeysinslot", slot.ToString(CultureInfo.InvariantCulture)).Trim(), Is.EqualTo("0"), "every key went home");

        // Every acknowledged lease exists and every acknowledged completion held; the rest complete on a retry.
        using var operators = broker.OperatorClient();
        var acked = completed.ToHashSet();
        foreach (var (agent, leaseId) in begun)
        {
            var lease = await Unavailable.RetryAsync(() => operators.GetLeaseAsync(leaseId));
            if (acked.Contains(leaseId))
            {
                Assert.That(lease.State, Is.EqualTo("completed"), $"lease {leaseId} of {agent}: the acknowledged completion was lost");
                continue;
            }

            using var client = broker.ClientFor(Subject(agent));
            var done = await Unavailable.RetryAsync(() => client.CompleteTaskAsync(leaseId));
            Assert.That(done.State, Is.EqualTo("completed"), $"lease {leaseId} of {agent} (was '{lease.State}')");
        }
    }

    private static BeginTaskRequest Begin(string task) => new()
    {
        TaskId = task + "-" + Guid.NewGuid().ToString("N")[..8],
        Scopes = { "tickets:read" },
        Audience = "tickets-api",
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };
}
