using CredBroker.Bench.Mint;
using CredBroker.Testing;

namespace CredBroker.Bench.Tests;

/// <summary>
/// The mint load client counts a call as a success only when the broker really minted (grpc-status 0
/// and a token); refusals and bad credentials are failures, so a benchmark cannot report errors as speed.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MintLoadClientTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Billing = "system:serviceaccount:finance:billing";
    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker();
        await _broker.StartAsync(_redis.ConnectionString);
        _http = MintLoadClient.CreateHttpClient();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _http.Dispose();
        await _broker.DisposeAsync();
        _redis.Dispose();
    }

    private Uri Begin => new(_broker.AgentAddress, MintCalls.BeginTaskPath);

    private Uri Complete => new(_broker.AgentAddress, MintCalls.CompleteTaskPath);

    [Test]
    public async Task MintedTask_IsOk_AndCompletes()
    {
        var authorization = "Bearer " + _broker.WorkloadToken(Triage);

        var begun = await MintCalls.BeginTaskAsync(_http, Begin, authorization, $"ok-{Guid.NewGuid():N}", CancellationToken.None);
        Assert.That(begun.Ok, Is.True, begun.Failure);
        var completed = await MintCalls.CompleteTaskAsync(_http, Complete, authorization, begun.LeaseId!, CancellationToken.None);

        Assert.That(completed.Ok, Is.True, completed.Failure);
    }

    [Test]
    public async Task BadCredential_IsAFailureWithGrpcStatusUnauthenticated()
    {
        var begun = await MintCalls.BeginTaskAsync(_http, Begin, "Bearer not-a-jwt", "task-1", CancellationToken.None);

        Assert.That(begun.Ok, Is.False);
        Assert.That(begun.Failure, Does.StartWith("grpc-status 16:"));
    }

    [Test]
    public async Task PolicyRefusal_IsAFailureWithGrpcStatusPermissionDenied()
    {
        // The billing agent may not mint for tickets-api: HTTP 200 with grpc-status 7 must not count as a mint.
        var begun = await MintCalls.BeginTaskAsync(_http, Begin, "Bearer " + _broker.WorkloadToken(Billing), $"no-{Guid.NewGuid():N}", CancellationToken.None);

        Assert.That(begun.Ok, Is.False);
        Assert.That(begun.Failure, Does.StartWith("grpc-status 7:"));
    }

    [Test]
    public async Task CompletingAnUnknownLease_IsAFailure()
    {
        var completed = await MintCalls.CompleteTaskAsync(_http, Complete, "Bearer " + _broker.WorkloadToken(Triage),
            CredBroker.Core.Leases.LeaseIds.For("triage-agent", "a task never begun"), CancellationToken.None);

        Assert.That(completed.Ok, Is.False);
        Assert.That(completed.Failure, Does.StartWith("grpc-status 5:"));
    }

    [Test]
    public async Task LoadRunWithARefusedCredential_CountsOnlyFailures()
    {
        var client = new MintLoadClient(_broker.AgentAddress, "not-a-jwt", TextWriter.Null);

        var result = await client.RunAsync("mint", concurrency: 2, connections: 1, TimeSpan.Zero, TimeSpan.FromMilliseconds(300),
            new Dictionary<string, int>(), CancellationToken.None);

        Assert.That(result.BeginOk, Is.Zero);
        Assert.That(result.BeginFailed, Is.GreaterThan(0));
        Assert.That(result.MintsPerSecond, Is.Zero);
        Assert.That(result.Failures, Has.Some.StartWith("grpc-status 16:"));
    }
}
