using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 2: deeply nested or oversized YAML — an AnalyzePolicy candidate (viewer role) or
/// the policy file behind ReloadPolicy and the file watcher — is refused naming the limit; the broker
/// never crashes (before the fix one AnalyzePolicy call overflowed the stack and took the process down).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityPolicyInputTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static string Deep(int depth) => new string('[', depth) + new string(']', depth);

    [TestCase(30_000)]
    [TestCase(5_000)]
    public async Task AnalyzePolicy_DeeplyNestedCandidate_IsInvalidArgumentNamingTheLimit_AndTheBrokerKeepsServing(int depth)
    {
        using var operators = Broker.OperatorClient();

        var error = Assert.ThrowsAsync<RpcException>(() => operators.AnalyzePolicyAsync("agents: " + Deep(depth)));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
        Assert.That(error.Message, Does.Contain("nesting deeper than"));
        using var agent = Broker.ClientFor(Triage);
        var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "after-deep-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
        Assert.That(begun.AccessToken, Is.Not.Empty, "the broker still serves");
    }

    [Test]
    public async Task AnalyzePolicy_DeepBlockMappings_AreInvalidArgument()
    {
        using var operators = Broker.OperatorClient();
        var yaml = new System.Text.StringBuilder();
        for (var i = 0; i < 300; i++)
        {
            yaml.Append(' ', i).Append('k').Append(i).Append(":\n");
        }

        var error = Assert.ThrowsAsync<RpcException>(() => operators.AnalyzePolicyAsync(yaml.ToString()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), error.Message);
        Assert.That((await operators.AnalyzePolicyAsync()).Version, Is.Not.Empty);
    }

    [Test]
    public async Task AnalyzePolicy_OrdinaryBadCandidate_StillAnswersWithFindings()
    {
        using var operators = Broker.OperatorClient();

        var analysis = await operators.AnalyzePolicyAsync("agents: [[]]");

        Assert.That(analysis.Findings, Is.Not.Empty);
    }

    [Test]
    public async Task ReloadPolicy_DeeplyNestedFile_IsRefusedNamingTheLimit_AndTheOldPolicyStays()
    {
        using var operators = Broker.OperatorClient();
        var good = await File.ReadAllTextAsync(Broker.PolicyFile);
        var before = (await operators.AnalyzePolicyAsync()).Version;
        try
        {
            await File.WriteAllTextAsync(Broker.PolicyFile, "agents: " + Deep(1_000_000));

            var reload = await operators.ReloadPolicyAsync();

            Assert.That(reload.Applied, Is.False);
            Assert.That(reload.Errors.Select(e => e.Message), Has.Some.Contains("nesting deeper than"));
            Assert.That(reload.Version, Is.EqualTo(before));
            using var agent = Broker.ClientFor(Triage);
            Assert.That((await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "reload-deep-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } })).AccessToken, Is.Not.Empty);
        }
        finally
        {
            await File.WriteAllTextAsync(Broker.PolicyFile, good);
            await operators.ReloadPolicyAsync();
        }
    }
}
