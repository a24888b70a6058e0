using System.Globalization;
using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Cli.Tests;

/// <summary>
/// <c>leases list</c> and <c>approvals list</c> while one master of a real 3-master Redis Cluster is lost
/// (kill -9): the other agents' items on stdout, a warning on stderr naming the unreachable shards, the
/// usual exit code; filtered to an agent on the lost master, exit 6 (UNAVAILABLE).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CliPartialListingTests
{
    private const int AgentCount = 9;

    private static readonly string[] Agents = [.. Enumerable.Range(0, AgentCount).Select(i => $"cli-agent-{i}")];

    private static string AgentsYaml => ClusterAgents.Yaml(Agents, "cli partial listing test", "approval_scopes: [tickets:export]");

    private static string[] WorkloadArguments => ClusterAgents.WorkloadArguments(Agents);

    private static string Agent(int i) => Agents[i];

    private static string Tag(int shard) => ClusterAgents.ShardTag(shard);

    [Test]
    [CancelAfter(240_000)]
    public async Task OneMasterLost_ListsPrintTheOtherAgents_WarnOnStderrNamingTheShards_AndExitAsUsual()
    {
        using var cluster = RedisCluster.Start(fullCoverage: false);
        var victim = cluster.Nodes.First(n => n != cluster.MasterOf("cb:{audit}:log") && n != cluster.MasterOf("cb:signing:schedule"));
        var lostShards = Enumerable.Range(0, LeaseIds.ShardCount).Where(s => cluster.MasterOf(Tag(s)) == victim).ToList();
        var lost = Enumerable.Range(0, AgentCount).Where(a => lostShards.Contains(LeaseIds.ShardOf(Agent(a)))).ToList();
        var kept = Enumerable.Range(0, AgentCount).Except(lost).ToList();
        Assert.That(lost, Is.Not.Empty, "some agent lives on the master to kill");
        Assert.That(kept, Is.Not.Empty);

        await using var broker = new ProductionBroker(AgentsYaml);
        await broker.StartAsync(cluster.ConnectionString, WorkloadArguments);
        var approvals = new Dictionary<int, string>();
        for (var a = 0; a < AgentCount; a++)
        {
            using var client = broker.ClientFor(ClusterAgents.Subject(Agent(a)));
            approvals[a] = (await client.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = "export-" + Guid.NewGuid().ToString("N")[..8], Scopes = { "tickets:read", "tickets:export" }, Audience = "tickets-api",
                Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
            })).ApprovalId;
        }

        victim.Kill();

        var environment = new Dictionary<string, string?>
        {
            ["CREDBROKER_OPERATOR_ADDRESS"] = broker.OperatorAddress.ToString(),
            ["CREDBROKER_OPERATOR_TOKEN"] = broker.WorkloadToken(ProductionBroker.Operator, audience: ProductionBroker.OperatorAudience),
        };
        var warning = $"lease shards {string.Join(", ", lostShards)} could not be read";

        var table = await CliProcess.RunAsync(environment, null, "approvals", "list");
        Assert.That(table.ExitCode, Is.EqualTo(ExitCodes.Ok), table.Stderr);
        Assert.That(table.Stderr, Does.StartWith("credbroker: warning: the list is incomplete").And.Contain(warning), table.Stderr);
        foreach (var a in kept)
        {
            Assert.That(table.Stdout, Does.Contain(approvals[a]));
        }

        foreach (var a in lost)
        {
            Assert.That(table.Stdout, Does.Not.Contain(approvals[a]));
        }

        var json = await CliProcess.RunAsync(environment, null, "leases", "list", "--limit", "1000", "--json");
        Assert.That(json.ExitCode, Is.EqualTo(ExitCodes.Ok), json.Stderr);
        Assert.That(json.Stderr, Does.Contain(warning));
        using (var listed = JsonDocument.Parse(json.Stdout))
        {
            Assert.That(listed.RootElement.EnumerateArray().Select(l => l.GetProperty("agentId").GetString()).Distinct(), Is.EquivalentTo(kept.Select(Agent)),
                "stdout stays a clean JSON array of what could be read");
        }

        var one = await CliProcess.RunAsync(environment, null, "approvals", "list", "--agent", Agent(lost[0]));
        Assert.That(one.ExitCode, Is.EqualTo(ExitCodes.Unavailable), one.Stdout + one.Stderr);
        var other = await CliProcess.RunAsync(environment, null, "approvals", "list", "--agent", Agent(kept[0]));
        Assert.That(other.ExitCode, Is.EqualTo(ExitCodes.Ok), other.Stderr);
        Assert.That(other.Stderr, Does.Not.Contain("warning"));
        Assert.That(other.Stdout, Does.Contain(approvals[kept[0]]));
    }
}
