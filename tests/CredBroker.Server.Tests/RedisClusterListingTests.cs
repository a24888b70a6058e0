using System.Globalization;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Operator lists while one master of a real 3-master Redis Cluster is lost (kill -9): ListLeases and
/// ListApprovals on a live broker process answer OK with what the reachable masters hold and name exactly
/// the lost master's lease shards (unreachable_shards); a list filtered to an agent on the lost master is
/// UNAVAILABLE; the broker logs one warning for the set; after the master restarts from its AOF the
/// lists are complete again.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisClusterListingTests
{
    private const int AgentCount = 12;

    private static readonly string[] Agents = [.. Enumerable.Range(0, AgentCount).Select(i => $"list-agent-{i}")];

    private static string AgentsYaml => ClusterAgents.Yaml(Agents, "cluster listing test", "approval_scopes: [tickets:export]");

    private static string[] WorkloadArguments => ClusterAgents.WorkloadArguments(Agents);

    private static string Agent(int i) => Agents[i];

    private static string Subject(int i) => ClusterAgents.Subject(Agents[i]);

    private static string Tag(int shard) => ClusterAgents.ShardTag(shard);

    [Test]
    [CancelAfter(240_000)]
    public async Task OneMasterKilled_ListsAnswerWithTheOtherAgents_NameItsShards_AndAreCompleteOnceItIsBack()
    {
        using var cluster = RedisCluster.Start(appendOnly: true, fullCoverage: false);
        // The master to kill holds neither the audit chain nor the key schedule (every BeginTask needs those).
        var victim = cluster.Nodes.First(n => n != cluster.MasterOf("cb:{audit}:log") && n != cluster.MasterOf("cb:signing:schedule"));
        var lostShards = Enumerable.Range(0, LeaseIds.ShardCount).Where(s => cluster.MasterOf(Tag(s)) == victim).ToList();
        var lost = Enumerable.Range(0, AgentCount).Where(a => lostShards.Contains(LeaseIds.ShardOf(Agent(a)))).ToList();
        var kept = Enumerable.Range(0, AgentCount).Except(lost).ToList();
        Assert.That(lost, Is.Not.Empty, "some agent lives on the master to kill");
        Assert.That(kept, Is.Not.Empty);

        await using var broker = new ProductionBroker(AgentsYaml);
        await broker.StartAsync(cluster.ConnectionString, WorkloadArguments);
        using var replica = await broker.StartReplicaProcessAsync(cluster.ConnectionString, WorkloadArguments);

        // Every agent holds an active lease and waits for an approval.
        var approvals = new Dictionary<int, string>();
        for (var a = 0; a < AgentCount; a++)
        {
            using var client = broker.ClientFor(Subject(a));
            await client.BeginTaskAsync(Begin("active", "tickets:read"));
            approvals[a] = (await client.BeginTaskAsync(Begin("export", "tickets:read", "tickets:export"))).ApprovalId;
            Assert.That(approvals[a], Is.Not.Empty, "tickets:export needs an approval");
        }

        using var operators = new CredBrokerOperatorClient(replica.OperatorAddress,
            () => broker.WorkloadToken(ProductionBroker.Operator, audience: ProductionBroker.OperatorAudience));
        var before = await operators.ListApprovalsAsync(new ListApprovalsRequest { PageSize = 500 });
        Assert.That(before.UnreachableShards, Is.Empty);
        Assert.That(before.Approvals.Select(x => x.ApprovalId), Is.EquivalentTo(approvals.Values));

        victim.Kill();

        // Partial results: OK, every other agent's items, exactly the lost master's shards named.
        var leases = await operators.ListLeasesAsync(new ListLeasesRequest { PageSize = 500 });
        Assert.That(leases.UnreachableShards, Is.EqualTo(lostShards));
        Assert.That(leases.Leases.Select(l => l.AgentId).Distinct(), Is.EquivalentTo(kept.Select(Agent)));
        Assert.That(leases.Leases, Has.Count.EqualTo(kept.Count * 2), "each kept agent's active and pending lease");
        Assert.That(leases.NextPageToken, Is.Empty);

        var pending = await operators.ListApprovalsAsync(new ListApprovalsRequest { PageSize = 500 });
        Assert.That(pending.UnreachableShards, Is.EqualTo(lostShards));
        Assert.That(pending.Approvals.Select(x => x.ApprovalId), Is.EquivalentTo(kept.Select(a => approvals[a])));
        Assert.That(pending.Approvals.Select(x => x.State), Is.All.EqualTo("pending"));

        // Small pages: every page names the lost shards passed so far; the walk reads every kept lease once.
        var walked = new List<string>();
        var request = new ListLeasesRequest { PageSize = 3 };
        for (var pages = 0; ; pages++)
        {
            Assert.That(pages, Is.LessThan(100), "paging did not end");
            var page = await operators.ListLeasesAsync(request);
            Assert.That(page.UnreachableShards, Is.SubsetOf(lostShards));
            walked.AddRange(page.Leases.Select(l => l.LeaseId));
            request.PageToken = page.NextPageToken;
            if (request.PageToken.Length == 0)
            {
                Assert.That(page.UnreachableShards, Is.EqualTo(lostShards), "the last page names every shard the walk skipped");
                break;
            }
        }

        Assert.That(walked, Is.Unique.And.EquivalentTo(leases.Leases.Select(l => l.LeaseId)));

        // Filtered to one agent: its shard only, so the lost master's agents are UNAVAILABLE, the others complete.
        var refused = await Refused.CallAsync(() => operators.ListApprovalsAsync(new ListApprovalsRequest { AgentId = Agent(lost[0]) }));
        Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.Unavailable), refused.Status.Detail);
        refused = await Refused.CallAsync(() => operators.ListLeasesAsync(new ListLeasesRequest { AgentId = Agent(lost[0]) }));
        Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.Unavailable), refused.Status.Detail);
        var one = await operators.ListApprovalsAsync(new ListApprovalsRequest { AgentId = Agent(kept[0]) });
        Assert.That((one.Approvals.Single().ApprovalId, one.UnreachableShards.Count), Is.EqualTo((approvals[kept[0]], 0)));

        // An operator can still decide what the list shows.
        var decided = await operators.DecideApprovalAsync(new DecideApprovalRequest
        {
            ApprovalId = approvals[kept[0]], Verdict = DecideApprovalRequest.Types.Verdict.Deny, Reason = "decided during the outage",
        });
        Assert.That(decided.Approval.State, Is.EqualTo("denied"));

        victim.Restart();

        var deadline = DateTime.UtcNow.AddSeconds(90);
        ListApprovalsResponse? complete = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                complete = await operators.ListApprovalsAsync(new ListApprovalsRequest { PageSize = 500 });
                if (complete.UnreachableShards.Count == 0)
                {
                    break;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                // The cluster is taking the master back.
            }

            await Task.Delay(200);
        }

        Assert.That(complete?.UnreachableShards, Is.Empty, "the master is back");
        Assert.That(complete!.Approvals.Select(x => x.ApprovalId), Is.EquivalentTo(approvals.Where(a => a.Key != kept[0]).Select(a => a.Value)), "every pending approval, the lost master's too");
        var all = await operators.ListLeasesAsync(new ListLeasesRequest { PageSize = 500 });
        Assert.That((all.Leases.Count, all.UnreachableShards.Count), Is.EqualTo((AgentCount * 2, 0)));
        Assert.That((await operators.ListApprovalsAsync(new ListApprovalsRequest { AgentId = Agent(lost[0]) })).Approvals.Single().ApprovalId, Is.EqualTo(approvals[lost[0]]));

        // One warning for the set (not one per call), and one line when the lists are complete again.
        var warnings = replica.Output.Split('\n').Where(l => l.Contains("answered with partial results", StringComparison.Ordinal)).ToList();
        Assert.That(warnings, Has.Count.EqualTo(1), replica.Output);
        Assert.That(warnings[0], Does.Contain("\"Shards\":\"" + string.Join(",", lostShards) + "\"").And.Contain("Warning"));
        Assert.That(replica.Output, Does.Contain("reads every lease shard again"));
    }

    private static BeginTaskRequest Begin(string task, params string[] scopes) => new()
    {
        TaskId = task + "-" + Guid.NewGuid().ToString("N")[..8],
        Scopes = { scopes },
        Audience = "tickets-api",
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };
}
