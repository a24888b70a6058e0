using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using CredBroker.Server.Hosting;
using Microsoft.AspNetCore.Builder;

namespace CredBroker.Wire.Tests;

/// <summary>
/// A dev-mode broker (<c>--dev</c>: in-memory store, sample policy, dev secrets), in process, on
/// free loopback ports (never the fixed 5400-5402, so a developer's broker can run alongside).
/// </summary>
public sealed class DevBroker : IAsyncDisposable
{
    /// <summary>The dev secrets, random per test run; dev mode reads them from the environment.</summary>
    public static readonly string AgentSecret = NewSecret();

    public static readonly string OperatorSecret = NewSecret();

    private readonly WebApplication _app;

    static DevBroker()
    {
        Environment.SetEnvironmentVariable("CREDBROKER_DEV_SECRET", AgentSecret);
        Environment.SetEnvironmentVariable("CREDBROKER_DEV_OPERATOR_SECRET", OperatorSecret);
    }

    private DevBroker(WebApplication app, int httpPort, int agentPort, int operatorPort)
    {
        _app = app;
        Http = new Uri($"http://127.0.0.1:{httpPort}");
        Agent = new Uri($"http://127.0.0.1:{agentPort}");
        Operator = new Uri($"http://127.0.0.1:{operatorPort}");
    }

    public Uri Http { get; }

    /// <summary>The agent gRPC listener (h2c): AgentBroker, TokenValidation, health, reflection.</summary>
    public Uri Agent { get; }

    /// <summary>The operator gRPC listener (h2c): Operator, health, reflection.</summary>
    public Uri Operator { get; }

    public static (string Name, string Value) AgentAuth => ("authorization", "Bearer " + AgentSecret);

    public static (string Name, string Value) OperatorAuth => ("authorization", "Bearer " + OperatorSecret);

    /// <summary>Starts a dev broker with <paramref name="extraArguments"/> (configuration overrides) and waits until it is ready.</summary>
    public static async Task<DevBroker> StartAsync(params string[] extraArguments)
    {
        var (http, agent, op) = (FreePort(), FreePort(), FreePort());
        string[] arguments =
        [
            "--dev",
            $"--CredBroker:Listen:HttpPort={http}",
            $"--CredBroker:Listen:AgentPort={agent}",
            $"--CredBroker:Listen:OperatorPort={op}",
            "--CredBroker:Listen:ConsolePort=0",
            .. extraArguments,
        ];
        var app = BrokerApp.Create(arguments, TextWriter.Null);
        await app.StartAsync();
        var broker = new DevBroker(app, http, agent, op);
        await broker.WaitReadyAsync();
        return broker;
    }

    private async Task WaitReadyAsync()
    {
        using var client = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await client.GetAsync(new Uri(Http, "/readyz"))).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("The dev broker did not become ready within 60 s.");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string NewSecret() => "wire-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
}

/// <summary>One dev broker shared by every fixture of this assembly (tests needing other settings start their own).</summary>
[SetUpFixture]
public sealed class SharedBroker
{
    public static DevBroker Instance { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => Instance = await DevBroker.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await Instance.DisposeAsync();
}
