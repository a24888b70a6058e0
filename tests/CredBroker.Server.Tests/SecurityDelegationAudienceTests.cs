using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 16: a parent token must carry the broker as audience. A token the parent got for
/// an API (which that API received, and could replay to the broker) is refused as subject_token; a
/// delegation token from IssueToken(audience = the broker) works (its audience is no API's).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityDelegationAudienceTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Helper = "system:serviceaccount:support:helper";

    private static readonly string Agents = ProductionBroker.AgentsYaml + """

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

    private string BrokerAudience => Broker.HttpAddress.ToString().TrimEnd('/');

    private static BeginTaskRequest Request(string subjectToken = "") =>
        new() { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, SubjectToken = subjectToken };

    [Test]
    public async Task ATokenForAnApi_IsNotAParentToken()
    {
        using var triage = Broker.ClientFor(Triage);
        using var helper = Broker.ClientFor(Helper);
        var parent = await triage.BeginTaskAsync(Request());
        Assert.That((await triage.IntrospectAsync(parent.AccessToken)).Aud, Is.EqualTo("tickets-api"));

        var error = Assert.ThrowsAsync<RpcException>(() => helper.BeginTaskAsync(Request(parent.AccessToken)));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), error.Message);
        Assert.That(error.Message, Does.Contain("delegation.parent_audience").And.Contain(BrokerAudience));
    }

    [Test]
    public async Task ADelegationToken_ForTheBroker_Delegates_AndTheChildKeepsTheParentsApiAudience()
    {
        using var triage = Broker.ClientFor(Triage);
        using var helper = Broker.ClientFor(Helper);
        var parent = await triage.BeginTaskAsync(Request());

        var delegation = await triage.IssueTokenAsync(new IssueTokenRequest { LeaseId = parent.LeaseId, Audience = BrokerAudience });
        var child = await helper.BeginTaskAsync(Request(delegation.AccessToken));

        var introspected = await helper.IntrospectAsync(child.AccessToken);
        Assert.That(introspected.Aud, Is.EqualTo("tickets-api"), "the child's tokens are for the parent lease's API, not the broker");
        Assert.That(introspected.ParentLeaseIds, Is.EqualTo(new[] { parent.LeaseId }));
        Assert.That((await triage.IntrospectAsync(delegation.AccessToken)).Aud, Is.EqualTo(BrokerAudience));
    }
}
