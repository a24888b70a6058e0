using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>Policy over the wire against real Redis: hot reload (file watch and ReloadPolicy), toxic combinations across leases, denial bursts, ExplainDecision, AnalyzePolicy.</summary>
[TestFixture]
[NonParallelizable]
public sealed class PolicyEndToEndTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Billing = "system:serviceaccount:finance:billing";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static string PolicyYaml(string triageScopes = "tickets:read, secrets:read:*, http:post:external") => $$"""
        version: 1
        settings:
          denial_burst: { threshold: 3, window: 1m, action: quarantine }
        context_labels:
          environment: [dev, prod]
        agents:
          - id: triage-agent
            owner: support-team@example.com
            purpose: triage support tickets
            identities: [{{Triage}}]
            audiences: [tickets-api]
            allowed_scopes: [{{triageScopes}}]
          - id: billing-agent
            owner: finance@example.com
            purpose: reconcile invoices
            identities: [{{Billing}}]
            audiences: [billing-api]
            allowed_scopes: [invoices:read]
            disallowed_scopes: [invoices:delete]
        toxic_combinations:
          - id: secret-exfiltration
            scopes: [secrets:read:*, http:post:external]
            within: agent
        """;

    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker(PolicyYaml());
        await _broker.StartAsync(_redis.ConnectionString);
    }

    [TearDown]
    public async Task StopAsync()
    {
        await _broker.DisposeAsync();
        _redis.Dispose();
    }

    private static BeginTaskRequest Request(params string[] scopes) => new() { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { scopes } };

    [Test]
    public async Task FileChange_TakesEffectWithoutRestart_AndAnInvalidFileKeepsTheOldPolicy()
    {
        using var agent = _broker.ClientFor(Triage);
        using var operators = _broker.OperatorClient();
        Assert.That(Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(Request("kb:read")))!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        var before = (await operators.AnalyzePolicyAsync()).Version;

        await File.WriteAllTextAsync(_broker.PolicyFile, PolicyYaml("tickets:read, kb:read"));
        // Poll with dry runs: denied BeginTasks would count toward the denial burst.
        var deadline = DateTime.UtcNow + Patience;
        var probe = new ExplainDecisionRequest { AgentId = "triage-agent", Scopes = { "kb:read" } };
        while ((await operators.ExplainDecisionAsync(probe)).Outcome != "allow")
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the file watcher reloaded the policy in time");
            await Task.Delay(50);
        }

        Assert.That((await agent.BeginTaskAsync(Request("kb:read"))).AccessToken, Is.Not.Empty);
        var good = (await operators.AnalyzePolicyAsync()).Version;
        Assert.That(good, Is.Not.EqualTo(before), "the watcher loaded the new file");

        await File.WriteAllTextAsync(_broker.PolicyFile, PolicyYaml("tickets:read, kb:read").Replace("    owner: finance@example.com\n", string.Empty));
        var reload = await operators.ReloadPolicyAsync();

        Assert.That(reload.Applied, Is.False);
        Assert.That(reload.Version, Is.EqualTo(good), "the last good policy stays in force");
        Assert.That(reload.Errors.Select(e => (e.File, e.Line, e.Field)), Is.EqualTo(new[] { (_broker.PolicyFile, 13, "agents[1].owner") }));
        Assert.That(reload.Errors[0].Message, Does.Contain("named owner"));
        Assert.That((await agent.BeginTaskAsync(Request("kb:read"))).AccessToken, Is.Not.Empty, "still deciding with the old policy");

        await File.WriteAllTextAsync(_broker.PolicyFile, PolicyYaml("tickets:read"));
        var fixedReload = await operators.ReloadPolicyAsync();
        Assert.That((fixedReload.Applied, fixedReload.Agents), Is.EqualTo((true, 2)));
        Assert.That(Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(Request("kb:read")))!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
    }

    [Test]
    public async Task ToxicCombination_AcrossTheAgentsLeases_IsDeniedWithTheRuleIds_UntilTheOtherTaskCompletes()
    {
        using var agent = _broker.ClientFor(Triage);
        var secret = await agent.BeginTaskAsync(Request("secrets:read:api-keys"));

        var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(Request("http:post:external")));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(error.GetDetail<ErrorInfo>()!.Metadata["rules"], Is.EqualTo("agent.allowed_scopes,toxic.secret-exfiltration"));
        Assert.That(error.Detail, Does.Contain("already holds").And.Contain("complete that task first"));
        Assert.That(error.Detail, Does.Not.Contain("billing"), "no other agent's policy leaks into the error");

        await agent.CompleteTaskAsync(secret.LeaseId);
        var post = await agent.BeginTaskAsync(Request("http:post:external"));
        Assert.That(post.RuleIds, Is.EqualTo(new[] { "agent.allowed_scopes" }));
    }

    [Test]
    public async Task DenialBurst_QuarantinesTheAgent()
    {
        using var billing = _broker.ClientFor(Billing);
        using var operators = _broker.OperatorClient();
        var begun = await billing.BeginTaskAsync(Request("invoices:read"));

        for (var i = 0; i < 3; i++)
        {
            Assert.That(Assert.ThrowsAsync<RpcException>(() => billing.BeginTaskAsync(Request("invoices:delete")))!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        }

        var blocked = Assert.ThrowsAsync<RpcException>(() => billing.BeginTaskAsync(Request("invoices:read")));
        Assert.That(blocked!.GetDetail<ErrorInfo>()!.Metadata["rules"], Is.EqualTo("agent.quarantined"));
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("revoked"), "its open lease was revoked");
        using var triage = _broker.ClientFor(Triage);
        Assert.That((await triage.BeginTaskAsync(Request("tickets:read"))).AccessToken, Is.Not.Empty, "other agents are unaffected");
    }

    [Test]
    public async Task ExplainDecision_ShowsEveryRule_AndChangesNothing()
    {
        using var agent = _broker.ClientFor(Triage);
        using var operators = _broker.OperatorClient();
        await agent.BeginTaskAsync(Request("secrets:read:db"));

        var plain = await operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "triage-agent", Scopes = { "http:post:external" } });
        var withHoldings = await operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "triage-agent", Scopes = { "http:post:external" }, IncludeHoldings = true });
        var unknown = await operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "nobody", Scopes = { "x:read" } });
        var unclassified = await operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "triage-agent", Scopes = { "tickets:read" }, Context = { ["environment"] = "moon" } });
        var bad = Assert.ThrowsAsync<RpcException>(() => operators.ExplainDecisionAsync(new ExplainDecisionRequest { AgentId = "Not An Id" }));

        Assert.That((plain.Outcome, plain.RuleIds.ToArray()), Is.EqualTo(("allow", new[] { "agent.allowed_scopes" })));
        Assert.That(plain.Steps.Select(s => s.RuleId), Does.Contain("toxic.secret-exfiltration"));
        Assert.That((withHoldings.Outcome, withHoldings.RuleIds.Last()), Is.EqualTo(("deny", "toxic.secret-exfiltration")));
        Assert.That((unknown.Outcome, unknown.RuleIds.Single()), Is.EqualTo(("deny", "agent.defined")));
        Assert.That((unclassified.Outcome, unclassified.RuleIds.Single()), Is.EqualTo(("deny", "context.unclassifiable")));
        Assert.That(bad!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        var leases = await operators.ListLeasesAsync(new ListLeasesRequest { AgentId = "triage-agent" });
        Assert.That(leases.Leases, Has.Count.EqualTo(1), "explaining opened nothing");
    }

    [Test]
    public async Task AnalyzePolicy_ReportsToxicReach_AndChecksACandidateFile()
    {
        using var operators = _broker.OperatorClient();

        var current = await operators.AnalyzePolicyAsync();
        var candidate = await operators.AnalyzePolicyAsync(PolicyYaml().Replace("    purpose: reconcile invoices\n", string.Empty));

        Assert.That(current.Findings.Select(f => (f.Kind, f.AgentId, f.RuleId)), Is.EqualTo(new[] { ("toxic_reachable", "triage-agent", "toxic.secret-exfiltration") }));
        Assert.That(candidate.Findings.Select(f => f.Kind), Is.EqualTo(new[] { "missing_purpose" }));
        Assert.That(candidate.Findings[0].Detail, Does.Contain("candidate:").And.Contain("agents[1].purpose"));
    }
}
