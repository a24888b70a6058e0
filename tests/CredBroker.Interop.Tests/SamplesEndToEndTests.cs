using System.Diagnostics;
using System.Text;
using CredBroker.Testing;

namespace CredBroker.Interop.Tests;

/// <summary>
/// The samples exactly as a new user runs them: the dev broker, samples/DownstreamApi, then the C# and
/// Python agent runtimes (begin, call the API, renew, complete, token rejected), each a separate process.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SamplesEndToEndTests
{
    private readonly string _secret = "samples-" + Guid.NewGuid().ToString("N");
    private readonly List<Process> _processes = [];
    private string _root = null!;
    private int _agentPort;
    private int _apiPort;

    [OneTimeSetUp]
    public async Task StartBrokerAndApiAsync()
    {
        _root = FindRoot();
        var httpPort = RedisServer.FreePort();
        _agentPort = RedisServer.FreePort();
        _apiPort = RedisServer.FreePort();
        var brokerDll = typeof(CredBroker.Server.Hosting.BrokerApp).Assembly.Location;
        // The API first, as a user starting both at once might: it waits for the broker's JWKS instead of failing closed.
        var api = Start(SampleDll("DownstreamApi"),
            $"--Broker:Http=http://127.0.0.1:{httpPort}", $"--Broker:Grpc=http://127.0.0.1:{_agentPort}", $"--Urls=http://127.0.0.1:{_apiPort}");
        var broker = Start(brokerDll, "--dev", $"--CredBroker:Listen:HttpPort={httpPort}", $"--CredBroker:Listen:AgentPort={_agentPort}",
            $"--CredBroker:Listen:OperatorPort={RedisServer.FreePort()}", "--CredBroker:Listen:ConsolePort=0", $"--CredBroker:Issuer=http://127.0.0.1:{httpPort}");
        await WaitReadyAsync(broker, $"http://127.0.0.1:{httpPort}/readyz");
        await WaitReadyAsync(api, $"http://127.0.0.1:{_apiPort}/healthz");
    }

    [OneTimeTearDown]
    public void Stop()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
        }
    }

    [Test]
    public void AgentRuntime_TokenWorksDuringTheTask_AndIsRejectedAfterCompletion()
    {
        var (exit, output) = RunToEnd("dotnet", SampleDll("AgentRuntime"));

        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("GET /tickets with the token: 200").And.Contain("GET /tickets with the renewed token: 200")
            .And.Contain("CompleteTask: completed").And.Contain("GET /tickets after completion: 401").And.Contain("revoked"));
    }

    [Test]
    public void PythonAgent_TokenWorksDuringTheTask_AndIsRejectedAfterCompletion()
    {
        var (exit, output) = RunToEnd("/usr/bin/python3", Path.Combine(_root, "samples", "python-agent", "agent.py"));

        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("GET /tickets with the token: 200").And.Contain("RenewLease: lease deadline")
            .And.Contain("CompleteTask: completed").And.Contain("GET /tickets after completion: 401").And.Contain("revoked")
            .And.Contain("Introspect after completion: active=False"));
    }

    [Test]
    public void AgentRuntime_WithoutTheApi_SaysHowToStartIt()
    {
        var (exit, output) = RunToEnd("dotnet", SampleDll("AgentRuntime"), apiUrl: $"http://127.0.0.1:{RedisServer.FreePort()}");

        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain("dotnet run --project samples/DownstreamApi"));
    }

    private string SampleDll(string name)
    {
        var dll = Path.Combine(_root, "samples", name, "bin", "Release", "net10.0", name + ".dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is missing: build the solution in Release first (tests/run.sh does)");
        return dll;
    }

    private (Process Process, string Name, StringBuilder Output) Start(string dll, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["CREDBROKER_DEV_SECRET"] = _secret;
        start.Environment["CREDBROKER_DEV_OPERATOR_SECRET"] = "operator-" + _secret;
        var process = Process.Start(start)!;
        _processes.Add(process);
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, Path.GetFileName(dll), output);
    }

    private static async Task WaitReadyAsync((Process Process, string Name, StringBuilder Output) started, string readyUrl)
    {
        var (process, name, output) = started;
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await http.GetAsync(readyUrl)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            lock (output)
            {
                Assert.That(process.HasExited, Is.False, $"{name} exited during start: {output}");
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{name} was not ready in 60 s: {output}");
            }

            await Task.Delay(100);
        }
    }

    private (int Exit, string Output) RunToEnd(string file, string script, string? apiUrl = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _root };
        start.ArgumentList.Add(script);
        start.Environment["CREDBROKER_DEV_SECRET"] = _secret;
        start.Environment["CREDBROKER_ADDRESS"] = file.EndsWith("python3", StringComparison.Ordinal) ? $"127.0.0.1:{_agentPort}" : $"http://127.0.0.1:{_agentPort}";
        start.Environment["DEMO_API_URL"] = apiUrl ?? $"http://127.0.0.1:{_apiPort}";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(90_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{script} did not finish in 90 s: {stdout}");
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
