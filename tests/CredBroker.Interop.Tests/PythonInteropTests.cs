using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CredBroker.Testing;

namespace CredBroker.Interop.Tests;

/// <summary>
/// The real broker binary in dev mode, called by Debian's python3-grpcio (a client we did not
/// write); the token is verified by PyJWT against the JWKS the broker serves.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PythonInteropTests
{
    private readonly string _secret = "interop-" + Guid.NewGuid().ToString("N");
    private Process _server = null!;
    private int _httpPort;
    private int _agentPort;
    private int _operatorPort;
    private readonly string _operatorSecret = "operator-" + Guid.NewGuid().ToString("N");
    private string _root = null!;

    [OneTimeSetUp]
    public async Task StartBrokerAsync()
    {
        _root = FindRoot();
        var dll = typeof(CredBroker.Server.Hosting.BrokerApp).Assembly.Location;
        (_httpPort, _agentPort, _operatorPort) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                dll, "--dev", $"--CredBroker:Listen:HttpPort={_httpPort}", $"--CredBroker:Listen:AgentPort={_agentPort}",
                $"--CredBroker:Listen:OperatorPort={_operatorPort}", "--CredBroker:Listen:ConsolePort=0", $"--CredBroker:Issuer=http://127.0.0.1:{_httpPort}",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["CREDBROKER_DEV_SECRET"] = _secret;
        start.Environment["CREDBROKER_DEV_OPERATOR_SECRET"] = _operatorSecret;
        _server = Process.Start(start)!;
        _server.OutputDataReceived += (_, _) => { };
        _server.ErrorDataReceived += (_, _) => { };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();

        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{_httpPort}/readyz")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline && !_server.HasExited)
            {
            }

            Assert.That(_server.HasExited, Is.False, "the broker exited during start");
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the broker did not become ready in 30 s");
            await Task.Delay(100);
        }
    }

    [OneTimeTearDown]
    public void StopBroker()
    {
        _server.Kill(entireProcessTree: true);
        _server.WaitForExit();
        _server.Dispose();
    }

    [Test]
    public void PythonGrpcio_EveryInteropCheckPasses()
    {
        var (exit, output) = RunPython("tests/interop/python/interop_test.py", $"127.0.0.1:{_agentPort}", $"http://127.0.0.1:{_httpPort}", $"127.0.0.1:{_operatorPort}");

        var checks = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith('{'))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToList();
        var failed = checks.Where(c => !c.GetProperty("ok").GetBoolean()).Select(c => c.ToString()).ToList();
        Assert.That(checks, Has.Count.GreaterThanOrEqualTo(18), output);
        Assert.That(failed, Is.Empty);
        Assert.That(exit, Is.Zero, output);
    }

    [Test]
    public async Task DownstreamApiSample_ServesWithTheToken_RefusesMissingScope_AndRevokedTokens()
    {
        var dll = Path.Combine(_root, "samples", "DownstreamApi", "bin", "Release", "net10.0", "DownstreamApi.dll");
        Assert.That(File.Exists(dll), Is.True, "build the solution in Release first (tests/run.sh does)");
        var apiPort = RedisServer.FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { dll, $"--Broker:Http=http://127.0.0.1:{_httpPort}", $"--Broker:Grpc=http://127.0.0.1:{_agentPort}", $"--Urls=http://127.0.0.1:{apiPort}" })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["CREDBROKER_DEV_SECRET"] = _secret;
        using var api = Process.Start(start)!;
        api.OutputDataReceived += (_, _) => { };
        api.ErrorDataReceived += (_, _) => { };
        api.BeginOutputReadLine();
        api.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                try
                {
                    if ((await http.GetAsync("/healthz")).IsSuccessStatusCode)
                    {
                        break;
                    }
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline && !api.HasExited)
                {
                }

                Assert.That(DateTime.UtcNow < deadline && !api.HasExited, Is.True, "the sample API did not come up");
                await Task.Delay(200);
            }

            using var agent = new Client.CredBrokerClient(new Uri($"http://127.0.0.1:{_agentPort}"), () => _secret);
            var begun = await agent.BeginTaskAsync(new Contracts.V1.BeginTaskRequest { TaskId = "sample-" + Guid.NewGuid().ToString("N"), Scopes = { "demo:read" }, Audience = "demo-api" });
            HttpRequestMessage Call(HttpMethod method) => new(method, "/tickets") { Headers = { Authorization = new("Bearer", begun.AccessToken) } };

            Assert.That((await http.SendAsync(Call(HttpMethod.Get))).StatusCode, Is.EqualTo(HttpStatusCode.OK));
            var post = await http.SendAsync(Call(HttpMethod.Post));
            Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
            Assert.That(post.Headers.WwwAuthenticate.ToString(), Does.Contain("insufficient_scope"));

            await agent.CompleteTaskAsync(begun.LeaseId);
            HttpResponseMessage after;
            var until = DateTime.UtcNow.AddSeconds(5);
            while ((after = await http.SendAsync(Call(HttpMethod.Get))).StatusCode == HttpStatusCode.OK && DateTime.UtcNow < until)
            {
                await Task.Delay(20);
            }

            Assert.That(after.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(after.Headers.WwwAuthenticate.ToString(), Does.Contain("revoked"));
        }
        finally
        {
            api.Kill(entireProcessTree: true);
            api.WaitForExit();
        }
    }

    private (int Exit, string Output) RunPython(string script, params string[] args)
    {
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : throw new InvalidOperationException("Debian's python3 is missing: run tests/run.sh");
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _root };
        start.ArgumentList.Add(Path.Combine(_root, script));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["CREDBROKER_DEV_SECRET"] = _secret;
        start.Environment["CREDBROKER_DEV_OPERATOR_SECRET"] = _operatorSecret;
        start.Environment["CREDBROKER_ADDRESS"] = $"127.0.0.1:{_agentPort}";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000))
        {
            process.Kill();
            Assert.Fail($"{script} did not finish in 60 s");
        }

        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above the test directory.");
    }
}
