using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 5: identifiers are matched exactly. In .NET a regex ending in <c>$</c> also accepts
/// a final "\n"; every identifier with a trailing newline (or other stray character) must be
/// INVALID_ARGUMENT — never a lease, never a policy denial counted toward bursts — and operator
/// actions on agents nobody knows are NOT_FOUND, black-box against a production broker.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityInputTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static BeginTaskRequest Request(string taskId, params string[] scopes) => new() { TaskId = taskId, Scopes = { scopes } };

    private async Task<List<AuditRecord>> AuditAsync(QueryAuditRequest request)
    {
        using var operators = Broker.OperatorClient();
        var records = new List<AuditRecord>();
        await foreach (var record in operators.QueryAuditAsync(request))
        {
            records.Add(record);
        }

        return records;
    }

    [TestCase("task-newline\n")]
    [TestCase("task-crlf\r\n")]
    [TestCase("task with space")]
    [TestCase("task-nul\0")]
    public async Task BeginTask_TaskIdWithTrailingNewlineOrStrayCharacter_IsInvalidArgument_AndOpensNoLease(string taskId)
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();

        var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(Request(taskId, "tickets:read")));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
        Assert.That(error.Message, Does.Contain("task_id"));
        var leases = await operators.ListLeasesAsync(new ListLeasesRequest { AgentId = "triage-agent", PageSize = 500 });
        Assert.That(leases.Leases.Select(l => l.TaskId), Does.Not.Contain(taskId), "no lease was opened for the malformed task id");
    }

    [TestCase("tickets:read\n")]
    [TestCase("tickets:read\r")]
    [TestCase("tickets:read ")]
    public async Task BeginTask_ScopeWithTrailingNewline_IsInvalidArgument_NotAnAuditedPolicyDenial(string scope)
    {
        using var agent = Broker.ClientFor(Triage);
        var taskId = "scope-" + Guid.NewGuid().ToString("N");

        var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(Request(taskId, scope)));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
        Assert.That(error.Message, Does.Contain("scopes"));
        var denials = await AuditAsync(new QueryAuditRequest { TaskId = taskId, EventTypes = { "token.denied" } });
        Assert.That(denials, Is.Empty, "bad input is not a policy decision: nothing is audited as a denial");
    }

    [Test]
    public void BeginTask_ContextKeyWithTrailingNewline_IsInvalidArgument()
    {
        using var agent = Broker.ClientFor(Triage);
        var request = Request("ctx-" + Guid.NewGuid().ToString("N"), "tickets:read");
        request.Context.Add("environment\n", "prod");

        var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(request));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
    }

    [Test]
    public async Task LeaseIdWithTrailingNewline_IsInvalidArgument_ForAgentsAndOperators()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(Request("lease-id-" + Guid.NewGuid().ToString("N"), "tickets:read"));
        var malformed = begun.LeaseId + "\n";

        var issue = Assert.ThrowsAsync<RpcException>(() => agent.IssueTokenAsync(new IssueTokenRequest { LeaseId = malformed }));
        var complete = Assert.ThrowsAsync<RpcException>(() => agent.CompleteTaskAsync(malformed));
        var get = Assert.ThrowsAsync<RpcException>(() => operators.GetLeaseAsync(malformed));
        var revoke = Assert.ThrowsAsync<RpcException>(() => operators.RevokeLeaseAsync(malformed, "test"));

        foreach (var error in new[] { issue, complete, get, revoke })
        {
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
            Assert.That(error.Message, Does.Contain("lease_id"));
        }

        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("active"), "the real lease is untouched");
    }

    [Test]
    public async Task QuarantineAgent_KnownIdWithTrailingNewline_IsInvalidArgument_AndChangesNothing()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(Request("q-" + Guid.NewGuid().ToString("N"), "tickets:read"));

        var quarantine = Assert.ThrowsAsync<RpcException>(() => operators.QuarantineAgentAsync("triage-agent\n", "test"));
        var release = Assert.ThrowsAsync<RpcException>(() => operators.ReleaseAgentAsync("triage-agent\n"));
        var revokeTask = Assert.ThrowsAsync<RpcException>(() => operators.RevokeTaskAsync("triage-agent\n", "x", "test"));
        var list = Assert.ThrowsAsync<RpcException>(() => operators.ListLeasesAsync(new ListLeasesRequest { AgentId = "triage-agent\n" }));
        var explain = Assert.ThrowsAsync<RpcException>(() => operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "triage-agent\n", Scopes = { "tickets:read" } }));

        foreach (var error in new[] { quarantine, release, revokeTask, list, explain })
        {
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
        }

        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("active"), "nothing was quarantined");
        await agent.CompleteTaskAsync(begun.LeaseId);
    }

    [Test]
    public async Task QuarantineAndRelease_OfAnUnknownAgent_AreNotFound_AndNotAudited()
    {
        using var operators = Broker.OperatorClient();

        var quarantine = Assert.ThrowsAsync<RpcException>(() => operators.QuarantineAgentAsync("no-such-agent", "test"));
        var release = Assert.ThrowsAsync<RpcException>(() => operators.ReleaseAgentAsync("no-such-agent"));

        Assert.That(quarantine!.StatusCode, Is.EqualTo(StatusCode.NotFound), quarantine.Message);
        Assert.That(quarantine.Message, Does.Contain("no-such-agent"));
        Assert.That(release!.StatusCode, Is.EqualTo(StatusCode.NotFound), release.Message);
        var records = await AuditAsync(new QueryAuditRequest { AgentId = "no-such-agent" });
        Assert.That(records, Is.Empty);
    }

    [Test]
    public async Task QuarantineAndRelease_OfADefinedAgent_StillWork()
    {
        using var operators = Broker.OperatorClient();

        var quarantined = await operators.QuarantineAgentAsync("billing-agent", "test");
        var released = await operators.ReleaseAgentAsync("billing-agent");

        Assert.That(quarantined.QuarantinedSince, Is.Not.Null);
        Assert.That(released.Released, Is.True);
    }
}
