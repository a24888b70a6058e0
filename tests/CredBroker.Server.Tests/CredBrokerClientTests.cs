using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CredBroker.Server.Tests;

/// <summary>The client library itself: AddCredBrokerClient's options and validation, credentials per call, the RpcErrors helpers.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CredBrokerClientTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    [Test]
    public void Options_EachBadSettingIsNamed()
    {
        var failures = Validate(new Dictionary<string, string?>
        {
            ["CredBroker:Client:Address"] = "127.0.0.1:5401",
            ["CredBroker:Client:Timeout"] = "00:00:00",
            ["CredBroker:Client:MaxRetryAttempts"] = "9",
            ["CredBroker:Client:ClientCertificateFile"] = "/nonexistent/client.pem",
        });

        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:Address is required"));
        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:Timeout must be"));
        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:MaxRetryAttempts must be 1 to 5"));
        Assert.That(failures, Has.Some.StartWith("No workload credential").And.Some.Contain("CredBroker:Client:CredentialFile"));
        Assert.That(failures, Has.Some.EqualTo("CredBroker:Client:ClientCertificateFile: the file '/nonexistent/client.pem' does not exist."));
        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:ClientCertificateFile and CredBroker:Client:ClientKeyFile go together"));
    }

    [Test]
    public void Options_TwoCredentialSourcesOrTlsFilesOnCleartext_AreRefused()
    {
        var ca = Path.GetTempFileName();
        try
        {
            var failures = Validate(new Dictionary<string, string?>
            {
                ["CredBroker:Client:Address"] = "http://127.0.0.1:5401",
                ["CredBroker:Client:Credential"] = "dev-secret",
                ["CredBroker:Client:CredentialFile"] = ca,
                ["CredBroker:Client:TrustedRootFile"] = ca,
            });

            Assert.That(failures, Has.Some.EqualTo("Set exactly one workload credential source; got CredBroker:Client:CredentialFile and CredBroker:Client:Credential."));
            Assert.That(failures, Has.Some.StartWith("CredBroker:Client:TrustedRootFile and CredBroker:Client:ClientCertificateFile need an https://"));
        }
        finally
        {
            File.Delete(ca);
        }
    }

    [Test]
    public void Options_GoodSettingsPass()
    {
        Assert.That(Validate(new Dictionary<string, string?>
        {
            ["CredBroker:Client:Address"] = "http://127.0.0.1:5401",
            ["CredBroker:Client:Credential"] = "dev-secret",
            ["CredBroker:Client:Timeout"] = "00:00:05",
        }), Is.Empty);
    }

    [Test]
    public async Task Options_AreValidatedWhenTheHostStarts()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["CredBroker:Client:Credential"] = "dev-secret" });
        builder.Services.AddCredBrokerClient(builder.Configuration);
        using var host = builder.Build();

        var error = Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(error!.Message, Does.Contain("CredBroker:Client:Address is required"));
        await host.StopAsync();
    }

    [Test]
    public async Task AddCredBrokerClient_ReadsTheCredentialFilePerCall_AndErrorsCarryErrorInfo()
    {
        var broker = Broker;
        var tokenFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(tokenFile, broker.WorkloadToken(Triage));
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["CredBroker:Client:Address"] = broker.AgentAddress.ToString(),
                ["CredBroker:Client:CredentialFile"] = tokenFile,
                ["CredBroker:Client:Timeout"] = "00:00:30",
            }).Build();
            await using var services = new ServiceCollection().AddCredBrokerClient(configuration).BuildServiceProvider(validateScopes: true);
            var client = services.GetRequiredService<CredBrokerClient>();
            Assert.That(client.Timeout, Is.EqualTo(TimeSpan.FromSeconds(30)));

            var begun = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "di-1", Scopes = { "tickets:read" } });
            Assert.That(begun.AccessToken, Is.Not.Empty);
            await client.CompleteTaskAsync(begun.LeaseId);

            var denied = await Refused.CallAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "di-2", Scopes = { "tickets:delete" } }));
            Assert.That(denied.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
            Assert.That(denied.Detail, Is.EqualTo(denied.Status.Detail).And.Not.Empty);
            Assert.That(denied.ErrorInfo?.Reason, Is.EqualTo("POLICY_DENIED"));
            Assert.That(denied.GetDetail<ErrorInfo>(), Is.EqualTo(denied.ErrorInfo));
            Assert.That(denied.RichStatus?.Code, Is.EqualTo((int)StatusCode.PermissionDenied));
            Assert.That(denied.RetryInfo, Is.Null);

            // The file is read on every call: a replaced credential is used at once.
            await File.WriteAllTextAsync(tokenFile, "not-a-jwt");
            var refused = await Refused.CallAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "di-3", Scopes = { "tickets:read" } }));
            Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
            Assert.That(refused.ErrorInfo, Is.Null.Or.Property(nameof(ErrorInfo.Reason)).Not.EqualTo("POLICY_DENIED"));
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Test]
    public async Task AsyncCredentialSource_IsAskedOnEveryCall()
    {
        var broker = Broker;
        var asked = 0;
        using var client = new CredBrokerClient(broker.AgentAddress, async ct =>
        {
            await Task.Yield();
            Interlocked.Increment(ref asked);
            return broker.WorkloadToken(Triage);
        });

        var begun = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "async-1", Scopes = { "tickets:read" } });
        await client.CompleteTaskAsync(begun.LeaseId);

        Assert.That(asked, Is.EqualTo(2));
    }

    [Test]
    public async Task TimeoutBecomesTheDeadline_AndCancellationSurfacesAsCancelled()
    {
        var broker = Broker;
        using var expired = new CredBrokerClient(broker.AgentAddress, () => broker.WorkloadToken(Triage)) { Timeout = TimeSpan.FromTicks(1) };
        using var client = broker.ClientFor(Triage);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var late = await Refused.CallAsync(() => expired.BeginTaskAsync(new BeginTaskRequest { TaskId = "d-1", Scopes = { "tickets:read" } }));
        var error = await Refused.CallAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "c-1", Scopes = { "tickets:read" } }, cancelled.Token));

        Assert.That(late.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
        Assert.That(error.StatusCode, Is.EqualTo(StatusCode.Cancelled));
    }

    private static List<string> Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection().AddCredBrokerClient(configuration).BuildServiceProvider();
        try
        {
            _ = services.GetRequiredService<IOptions<CredBrokerClientOptions>>().Value;
            return [];
        }
        catch (OptionsValidationException e)
        {
            return e.Failures.ToList();
        }
    }
}
