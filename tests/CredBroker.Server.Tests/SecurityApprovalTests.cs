using CredBroker.Client;
using CredBroker.Contracts.V1;
using Grpc.Core;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Verdict = CredBroker.Contracts.V1.DecideApprovalRequest.Types.Verdict;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 4: every token WatchApproval hands out after an approval went through the one mint
/// path — its <c>token.minted</c> record (with its jti) is in the audit chain, like BeginTask's.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityApprovalTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static BeginTaskRequest ExportRequest() => new()
    {
        TaskId = "export-" + Guid.NewGuid().ToString("N"),
        Scopes = { "tickets:read", "tickets:export" },
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };

    private static async Task<ApprovalStatus> LastAsync(CredBrokerClient agent, string approvalId)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        ApprovalStatus? last = null;
        await foreach (var status in agent.WatchApprovalAsync(approvalId, cancel.Token))
        {
            last = status;
        }

        return last!;
    }

    private async Task<List<AuditRecord>> MintsAsync(string leaseId)
    {
        using var operators = Broker.OperatorClient();
        var records = new List<AuditRecord>();
        await foreach (var record in operators.QueryAuditAsync(new QueryAuditRequest { LeaseId = leaseId, EventTypes = { "token.minted" } }))
        {
            records.Add(record);
        }

        return records;
    }

    [Test]
    public async Task EveryTokenFromWatchApproval_IsInTheAuditChain_BeforeItIsReturned()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(ExportRequest());
        Assert.That(begun.ApprovalId, Is.Not.Empty);
        await operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = Verdict.Approve, Reason = "ok" });

        var first = await LastAsync(agent, begun.ApprovalId);
        var second = await LastAsync(agent, begun.ApprovalId);

        Assert.That(first.State, Is.EqualTo("approved"));
        Assert.That(first.AccessToken, Is.Not.Empty);
        Assert.That(second.TokenId, Is.Not.EqualTo(first.TokenId), "each watch after approval mints a fresh token");
        var mints = await MintsAsync(begun.LeaseId);
        var jtis = mints.Select(r => r.Event.Details.GetValueOrDefault("jti")).ToList();
        Assert.That(jtis, Does.Contain(first.TokenId).And.Contain(second.TokenId), "both tokens are recorded as token.minted");
        var record = mints.Single(r => r.Event.Details["jti"] == first.TokenId).Event;
        Assert.That(record.Details["operation"], Is.EqualTo("watch_approval"));
        Assert.That(record.Caller, Does.StartWith("triage-agent"));
        Assert.That(record.ScopesGranted, Is.EqualTo(new[] { "tickets:export", "tickets:read" }));
    }
}
