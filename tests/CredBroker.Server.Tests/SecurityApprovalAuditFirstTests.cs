using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Verdict = CredBroker.Contracts.V1.DecideApprovalRequest.Types.Verdict;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 17: an approval decision is in the audit chain before it takes effect. With the
/// audit chain's Redis down, DecideApproval is UNAVAILABLE and the approval stays pending — never an
/// applied approval without its record; once the audit is back, the retried decision is recorded.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityApprovalAuditFirstTests : SeparateAuditRedisFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static BeginTaskRequest ExportRequest() => new()
    {
        TaskId = "export-" + Guid.NewGuid().ToString("N"),
        Scopes = { "tickets:read", "tickets:export" },
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };

    [TestCase(Verdict.Approve)]
    [TestCase(Verdict.Deny)]
    public async Task AuditDown_DecisionIsUnavailable_AndTheApprovalStaysPending_ThenTheRetryIsRecorded(Verdict verdict)
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(ExportRequest());
        var decision = new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = verdict, Reason = "reviewed" };

        AuditRedis.Kill();
        var error = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(decision));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable), error.Message);
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("pending_approval"), "nothing applied without its record");

        AuditRedis.Restart();
        var decided = await Unavailable.RetryAsync(() => operators.DecideApprovalAsync(decision));
        Assert.That(decided.Approval.State, Is.EqualTo(verdict == Verdict.Approve ? "approved" : "denied"));
        var records = new List<AuditRecord>();
        await foreach (var record in operators.QueryAuditAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "approval.decided" } }))
        {
            records.Add(record);
        }

        Assert.That(records.Select(r => r.Event.Details["verdict"]), Does.Contain(verdict == Verdict.Approve ? "approve" : "deny"));
        Assert.That((await operators.VerifyAuditAsync()).Intact, Is.True);
    }
}
