using CredBroker.Contracts.V1;
using Google.Rpc;

namespace CredBroker.Wire.Tests;

/// <summary>The broker's refusals carry google.rpc.ErrorInfo (domain credbroker.dev) and, for quotas, RetryInfo.</summary>
[TestFixture]
public sealed class ErrorDetailsTests : WireTest
{
    private const string Domain = "credbroker.dev";

    [Test]
    public async Task PolicyDenial_IsPermissionDenied_WithErrorInfoAndTheRule()
    {
        var request = ReadTask();
        request.Scopes.Add("demo:delete");
        var response = await UnaryAsync(Broker.Agent, BeginTask, request, DevBroker.AgentAuth);

        AssertStatus(response, Code.PermissionDenied);
        Assert.That(response.Message, Does.Contain("demo:delete").And.Contain("agent.disallowed_scope"), response.Describe());
        var status = response.Details;
        Assert.That(status, Is.Not.Null, "grpc-status-details-bin carries a google.rpc.Status: " + response.Describe());
        Assert.That(status!.Code, Is.EqualTo((int)Code.PermissionDenied));
        Assert.That(status.Message, Is.EqualTo(response.Message));
        var info = response.Detail<ErrorInfo>();
        Assert.That(info, Is.Not.Null);
        Assert.That(info!.Domain, Is.EqualTo(Domain));
        Assert.That(info.Reason, Is.EqualTo("POLICY_DENIED"));
        Assert.That(info.Metadata["rules"].Split(','), Does.Contain("agent.disallowed_scope"));
    }

    [Test]
    public async Task EmptyTaskId_IsInvalidArgument_WithErrorInfo()
    {
        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(taskId: string.Empty), DevBroker.AgentAuth);

        AssertStatus(response, Code.InvalidArgument);
        Assert.That(response.Message, Does.Contain("task_id"), response.Describe());
        var info = response.Detail<ErrorInfo>();
        Assert.That(info, Is.Not.Null, response.Describe());
        Assert.That(info!.Domain, Is.EqualTo(Domain));
        Assert.That(info.Reason, Is.EqualTo("INVALID_REQUEST"));
    }

    [Test]
    public async Task RateQuota_IsResourceExhausted_WithErrorInfoAndRetryInfo()
    {
        var policy = Path.Combine(Path.GetTempPath(), $"credbroker-wire-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(policy, """
            version: 1
            agents:
              - id: dev-agent
                owner: dev@example.com
                purpose: local development
                identities: [dev-agent]
                audiences: [demo-api]
                allowed_scopes: [demo:read]
                max_token_ttl: 15m
                max_lease_lifetime: 1h
                max_tasks_per_minute: 1
            """);
        try
        {
            await using var broker = await DevBroker.StartAsync($"--CredBroker:AgentsFile={policy}");
            AssertStatus(await UnaryAsync(broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth), Code.Ok);

            var response = await UnaryAsync(broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth);

            AssertStatus(response, Code.ResourceExhausted);
            Assert.That(response.Message, Does.Contain("max_tasks_per_minute"), response.Describe());
            var info = response.Detail<ErrorInfo>();
            Assert.That(info, Is.Not.Null, response.Describe());
            Assert.That(info!.Domain, Is.EqualTo(Domain));
            Assert.That(info.Reason, Is.EqualTo("QUOTA_EXCEEDED"));
            var retry = response.Detail<RetryInfo>();
            Assert.That(retry, Is.Not.Null, "a rate refusal says when to retry: " + response.Describe());
            Assert.That(retry!.RetryDelay.ToTimeSpan(), Is.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(TimeSpan.FromMinutes(1)));
        }
        finally
        {
            File.Delete(policy);
        }
    }
}
