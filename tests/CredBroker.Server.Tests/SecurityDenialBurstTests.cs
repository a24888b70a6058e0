using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 9: a denial-burst quarantine takes the operator's QuarantineAgent path — it is
/// audited (<c>agent.quarantined</c> and a <c>lease.revoked</c> per lease it ended) and cascades to
/// leases delegated from the agent's leases.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityDenialBurstTests : PerTestProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Helper = "system:serviceaccount:support:helper";

    private static readonly string Agents = $$"""
        version: 1
        settings:
          denial_burst: { threshold: 3, window: 1m, action: quarantine }
        agents:
          - id: triage-agent
            owner: support-team@example.com
            purpose: triage support tickets
            audiences: [tickets-api]
            allowed_scopes: [tickets:read]
            disallowed_scopes: [tickets:delete]
          - id: helper-agent
            owner: support-team@example.com
            purpose: fetch ticket details
            audiences: [tickets-api]
            allowed_scopes: [tickets:read]
        """;

    protected override string AgentsYaml => Agents;

    protected override string[] BrokerArguments =>
    [
        $"--CredBroker:Identity:Issuers:0:Workloads:3:Subject={Helper}",
        "--CredBroker:Identity:Issuers:0:Workloads:3:Agent=helper-agent",
    ];

    private static BeginTaskRequest Request(string scope, string subjectToken = "") =>
        new() { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { scope }, SubjectToken = subjectToken };

    private async Task<List<AuditEvent>> AuditAsync(QueryAuditRequest request)
    {
        using var operators = Broker.OperatorClient();
        var events = new List<AuditEvent>();
        await foreach (var record in operators.QueryAuditAsync(request))
        {
            events.Add(record.Event);
        }

        return events;
    }

    [Test]
    public async Task BurstQuarantine_IsAudited_RevokesWithRecords_AndCascadesToDelegatedLeases()
    {
        using var triage = Broker.ClientFor(Triage);
        using var helper = Broker.ClientFor(Helper);
        using var operators = Broker.OperatorClient();
        var parent = await triage.BeginTaskAsync(Request("tickets:read"));
        var delegation = await triage.IssueTokenAsync(new IssueTokenRequest { LeaseId = parent.LeaseId, Audience = Broker.HttpAddress.ToString().TrimEnd('/') });
        var child = await helper.BeginTaskAsync(Request("tickets:read", delegation.AccessToken));
        Assert.That((await operators.GetLeaseAsync(child.LeaseId)).State, Is.EqualTo("active"));

        for (var i = 0; i < 3; i++)
        {
            var denied = Assert.ThrowsAsync<RpcException>(() => triage.BeginTaskAsync(Request("tickets:delete")));
            Assert.That(denied!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        }

        Assert.That((await operators.GetLeaseAsync(parent.LeaseId)).State, Is.EqualTo("revoked"), "the agent's lease was revoked");
        Assert.That((await operators.GetLeaseAsync(child.LeaseId)).State, Is.EqualTo("revoked"), "the lease delegated from it was cascaded");
        Assert.That((await triage.IntrospectAsync(child.AccessToken)).Active, Is.False);

        var quarantined = await AuditAsync(new QueryAuditRequest { AgentId = "triage-agent", EventTypes = { "agent.quarantined" } });
        Assert.That(quarantined, Has.Count.EqualTo(1));
        Assert.That(quarantined[0].Operator, Is.EqualTo("policy:denial_burst"));
        Assert.That(quarantined[0].Reason, Does.Contain("denial burst"));
        Assert.That(quarantined[0].Details["leases_revoked"], Is.EqualTo("1"));
        var revoked = await AuditAsync(new QueryAuditRequest { LeaseId = parent.LeaseId, EventTypes = { "lease.revoked" } });
        Assert.That(revoked, Has.Count.EqualTo(1));
        Assert.That(revoked[0].Operator, Is.EqualTo("policy:denial_burst"));

        var blocked = Assert.ThrowsAsync<RpcException>(() => triage.BeginTaskAsync(Request("tickets:read")));
        Assert.That(blocked!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(blocked.Message, Does.Contain("quarantined"));
    }

    [Test]
    public async Task OperatorQuarantine_RecordsALeaseRevokedPerEndedLease()
    {
        using var triage = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var first = await triage.BeginTaskAsync(Request("tickets:read"));
        var second = await triage.BeginTaskAsync(Request("tickets:read"));

        var response = await operators.QuarantineAgentAsync("triage-agent", "incident 42");
        await operators.QuarantineAgentAsync("triage-agent", "incident 42");

        Assert.That(response.LeasesRevoked, Is.EqualTo(2));
        foreach (var lease in new[] { first.LeaseId, second.LeaseId })
        {
            var revoked = await AuditAsync(new QueryAuditRequest { LeaseId = lease, EventTypes = { "lease.revoked" } });
            Assert.That(revoked, Has.Count.EqualTo(1), "one record per lease, none for the repeated quarantine");
            Assert.That(revoked[0].Reason, Is.EqualTo("incident 42"));
        }

        await operators.ReleaseAgentAsync("triage-agent");
    }
}
