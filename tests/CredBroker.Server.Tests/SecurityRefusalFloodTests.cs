using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 13 (a): a flood of refused operator credentials or of denials does not flood the
/// audit chain. Per source and window the first refusal is recorded at once and the rest as one
/// summary record with their count when the window closes — the fact is never lost.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityRefusalFloodTests : PerTestProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    protected override string[] BrokerArguments =>
    [
        "--CredBroker:Audit:RefusalWindow=00:00:02",
    ];

    private async Task<List<AuditRecord>> AuditAsync(string type)
    {
        using var operators = Broker.OperatorClient();
        var records = new List<AuditRecord>();
        await foreach (var record in operators.QueryAuditAsync(new QueryAuditRequest { EventTypes = { type } }))
        {
            records.Add(record);
        }

        return records;
    }

    private async Task<List<AuditRecord>> WaitForSummaryAsync(string type)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var records = await AuditAsync(type);
            if (records.Any(r => r.Event.Details.ContainsKey("aggregated")) || waited.Elapsed > Patience)
            {
                return records;
            }

            await Task.Delay(200);
        }
    }

    [Test]
    public async Task RefusedOperatorCredentialFlood_IsOneRecordAndOneSummaryWithTheCount()
    {
        var agentToken = Broker.WorkloadToken(Triage);
        using var impostor = new CredBrokerOperatorClient(Broker.OperatorAddress, () => agentToken);

        for (var i = 0; i < 25; i++)
        {
            var refused = Assert.ThrowsAsync<RpcException>(() => impostor.ListLeasesAsync(new ListLeasesRequest()));
            Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated), "every call is still refused");
        }

        var records = await WaitForSummaryAsync("operator.auth_failed");

        var summaries = records.Where(r => r.Event.Details.ContainsKey("aggregated")).ToList();
        var single = records.Where(r => !r.Event.Details.ContainsKey("aggregated")).ToList();
        Assert.That(summaries, Is.Not.Empty, "the summary is written once the window closed");
        Assert.That(single.Count + summaries.Sum(s => long.Parse(s.Event.Details["aggregated"], System.Globalization.CultureInfo.InvariantCulture)), Is.EqualTo(25),
            "every refusal is accounted for: recorded on its own or counted in a summary");
        Assert.That(records, Has.Count.LessThan(25), "the flood did not append one record per refusal");
        var summary = summaries[0].Event;
        Assert.That(summary.Caller, Does.StartWith("127.0.0.1"));
        Assert.That(summary.Reason, Does.Contain("aggregated"));
        Assert.That(new[] { summary.Details["window_start"], summary.Details["window_end"], summary.Details["first_sequence"] }, Has.None.Empty);
        Assert.That(records.Select(r => r.CanonicalJson), Has.None.Contains(agentToken));
    }

    [Test]
    public async Task DenialFlood_IsOneRecordAndOneSummaryWithTheCount_AndEveryCallIsStillDenied()
    {
        using var triage = Broker.ClientFor(Triage);

        for (var i = 0; i < 20; i++)
        {
            var denied = Assert.ThrowsAsync<RpcException>(() => triage.BeginTaskAsync(
                new BeginTaskRequest { TaskId = "flood-" + i, Scopes = { "tickets:delete" } }));
            Assert.That(denied!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        }

        var records = await WaitForSummaryAsync("token.denied");

        var summaries = records.Where(r => r.Event.Details.ContainsKey("aggregated")).ToList();
        var single = records.Where(r => !r.Event.Details.ContainsKey("aggregated")).ToList();
        Assert.That(summaries, Is.Not.Empty);
        Assert.That(single[0].Event.TaskId, Is.EqualTo("flood-0"), "the first denial is recorded at once, in full");
        Assert.That(single.Count + summaries.Sum(s => long.Parse(s.Event.Details["aggregated"], System.Globalization.CultureInfo.InvariantCulture)), Is.EqualTo(20));
        Assert.That(records, Has.Count.LessThan(20));
        Assert.That(summaries[0].Event.RuleIds, Does.Contain("agent.disallowed_scope"));
        Assert.That(summaries[0].Event.AgentId, Is.EqualTo("triage-agent"));
    }
}
