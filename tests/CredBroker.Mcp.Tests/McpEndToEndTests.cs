using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Mcp.Tests;

/// <summary>
/// The MCP sample as a user runs it, each a separate process: a dev broker with samples/policy/mcp.yaml, the
/// samples/McpServer tool server (CredBroker.Validation.AspNetCore with the live revocation feed), and as clients the
/// official TypeScript SDK (tests/mcp/node) and samples/McpAgent (the MCP C# SDK).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class McpEndToEndTests
{
    private readonly string _secret = "mcp-" + Guid.NewGuid().ToString("N");
    private readonly List<ChildProcess> _processes = [];
    private string _root = null!;
    private int _httpPort;
    private int _agentPort;
    private Uri _mcp = null!;
    private CredBrokerClient _broker = null!;

    [OneTimeSetUp]
    public async Task StartBrokerAndServerAsync()
    {
        _root = FindRoot();
        _httpPort = RedisServer.FreePort();
        _agentPort = RedisServer.FreePort();
        var mcpPort = RedisServer.FreePort();
        _mcp = new Uri($"http://127.0.0.1:{mcpPort}/mcp");
        var environment = new Dictionary<string, string> { ["CREDBROKER_DEV_SECRET"] = _secret, ["CREDBROKER_DEV_OPERATOR_SECRET"] = "operator-" + _secret };
        var broker = Start("dotnet", [typeof(CredBroker.Server.Hosting.BrokerApp).Assembly.Location, "--dev",
            "--CredBroker:AgentsFile=" + Path.Combine(_root, "samples", "policy", "mcp.yaml"),
            $"--CredBroker:Listen:HttpPort={_httpPort}", $"--CredBroker:Listen:AgentPort={_agentPort}",
            $"--CredBroker:Listen:OperatorPort={RedisServer.FreePort()}", $"--CredBroker:Issuer=http://127.0.0.1:{_httpPort}"], environment);
        var server = Start("dotnet", [SampleDll("McpServer"), $"--Broker:Http=http://127.0.0.1:{_httpPort}",
            $"--Broker:Grpc=http://127.0.0.1:{_agentPort}", $"--Urls=http://127.0.0.1:{mcpPort}"], environment);
        await broker.WaitReadyAsync($"http://127.0.0.1:{_httpPort}/readyz");
        await server.WaitReadyAsync($"http://127.0.0.1:{mcpPort}/healthz");
        _broker = new CredBrokerClient(new Uri($"http://127.0.0.1:{_agentPort}"), () => _secret);
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _broker?.Dispose();
        foreach (var process in _processes)
        {
            process.Dispose();
        }
    }

    [Test]
    public async Task TypeScriptClient_ListsExactlyTheAllowedTools_CallsOne_IsRefusedTheOther_AndIsRefusedAfterCompleteTask()
    {
        var task = await _broker.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "ts-" + Guid.NewGuid().ToString("N"), Purpose = "read tickets", Scopes = { "demo:read" }, Audience = "demo-api",
            Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
        });
        using var node = Node("session", new Dictionary<string, string> { ["MCP_TOKEN"] = task.AccessToken }, stdin: true);

        var list = Step(await node.WaitForLineAsync(IsStep("list")));
        Assert.That(list.GetProperty("tools").EnumerateArray().Select(t => t.GetString()), Is.EqualTo(new[] { "list_tickets" }), node.Output);
        var call = Step(await node.WaitForLineAsync(IsStep("call")));
        Assert.That(call.GetProperty("isError").GetBoolean(), Is.False, node.Output);
        Assert.That(call.GetProperty("text").GetString(), Does.Contain("T-2"));
        var forbidden = Step(await node.WaitForLineAsync(IsStep("forbidden")));
        Assert.That(forbidden.GetProperty("refused").GetBoolean(), Is.True, node.Output);
        Assert.That(forbidden.GetProperty("code").GetInt32(), Is.EqualTo(403), node.Output);
        Assert.That(forbidden.GetProperty("message").GetString(), Does.Contain("insufficient_scope").And.Contain("'demo:write'"));
        await node.WaitForLineAsync(IsStep("ready"));

        Assert.That((await _broker.CompleteTaskAsync(task.LeaseId)).State, Is.EqualTo("completed"));
        await node.Process.StandardInput.WriteLineAsync("completed");
        await node.Process.StandardInput.FlushAsync();

        var after = Step(await node.WaitForLineAsync(IsStep("after")));
        Assert.That(after.GetProperty("refused").GetBoolean(), Is.True, "the same session is refused once the lease ended: " + node.Output);
        Assert.That(after.GetProperty("code").GetInt32(), Is.EqualTo(401), node.Output);
        Assert.That(await node.WaitForExitAsync(), Is.Zero, node.Output);
    }

    [Test]
    public async Task TypeScriptClient_DiscoversTheBrokerFromThe401Challenge()
    {
        using var node = Node("discover", new Dictionary<string, string>());

        var challenge = Step(await node.WaitForLineAsync(IsStep("challenge")));
        Assert.That(challenge.GetProperty("status").GetInt32(), Is.EqualTo(401));
        Assert.That(challenge.GetProperty("resource_metadata").GetString(), Is.EqualTo($"{_mcp.GetLeftPart(UriPartial.Authority)}/.well-known/oauth-protected-resource"));
        var metadata = Step(await node.WaitForLineAsync(IsStep("metadata")));
        Assert.That(metadata.GetProperty("resource").GetString(), Is.EqualTo(_mcp.ToString()));
        Assert.That(metadata.GetProperty("authorization_servers")[0].GetString(), Is.EqualTo($"http://127.0.0.1:{_httpPort}"), "the broker is the authorization server");
        Assert.That(metadata.GetProperty("scopes_supported").EnumerateArray().Select(s => s.GetString()),
            Is.EqualTo(new[] { "customers:read", "demo:read", "demo:write", "http:post:external" }));
        Assert.That(await node.WaitForExitAsync(), Is.Zero, node.Output);
    }

    [Test]
    public async Task McpAgentSample_UsesTheTaskToken_AndIsRefusedOutsideItAndAfterCompletion()
    {
        using var agent = Start("dotnet", [SampleDll("McpAgent")], new Dictionary<string, string>
        {
            ["CREDBROKER_DEV_SECRET"] = _secret, ["CREDBROKER_ADDRESS"] = $"http://127.0.0.1:{_agentPort}", ["MCP_URL"] = _mcp.ToString(),
        });

        var exit = await agent.WaitForExitAsync();

        Assert.That(exit, Is.Zero, agent.Output);
        Assert.That(agent.Output, Does.Contain("tools/list with the demo:read token: [list_tickets]")
            .And.Contain("tools/call close_ticket with the demo:read token: refused, HTTP 403").And.Contain("'demo:write'")
            .And.Contain("tools/list with the task token: [close_ticket list_tickets]")
            .And.Contain("tools/call list_tickets with the renewed token: ok:")
            .And.Contain("CompleteTask: completed").And.Contain("tools/call list_tickets after completion: refused, HTTP 401")
            .And.Contain("toxic.customer-data-exfiltration"));
    }

    [Test]
    public async Task Broker_DeniesTheToxicToolCombinationWithinOneTask_ButGrantsEachAlone()
    {
        var denied = Assert.ThrowsAsync<RpcException>(() => _broker.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "exfil-" + Guid.NewGuid().ToString("N"), Purpose = "export", Scopes = { "customers:read", "http:post:external" }, Audience = "demo-api",
        }));
        Assert.That(denied!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(denied.ErrorInfo?.Metadata["rules"], Does.Contain("toxic.customer-data-exfiltration"));

        foreach (var scope in new[] { "customers:read", "http:post:external" })
        {
            var alone = await _broker.BeginTaskAsync(new BeginTaskRequest { TaskId = "one-" + Guid.NewGuid().ToString("N"), Purpose = "one tool", Scopes = { scope }, Audience = "demo-api" });
            Assert.That(alone.GrantedScopes, Is.EqualTo(new[] { scope }));
            await _broker.CompleteTaskAsync(alone.LeaseId);
        }
    }

    [Test]
    public async Task McpServer_RefusesAnotherAudiencesTokenAndAnUnauthenticatedCall()
    {
        using var http = new HttpClient();
        using var anonymous = await http.PostAsync(_mcp, new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.That((int)anonymous.StatusCode, Is.EqualTo(401));
        Assert.That(anonymous.Headers.WwwAuthenticate.ToString(), Does.Contain("resource_metadata="));

        using var forged = new HttpRequestMessage(HttpMethod.Post, _mcp) { Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json") };
        forged.Headers.Authorization = new("Bearer", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        using var response = await http.SendAsync(forged);
        Assert.That((int)response.StatusCode, Is.EqualTo(401));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("error=\"invalid_token\""));
    }

    private ChildProcess Start(string file, string[] arguments, IReadOnlyDictionary<string, string> environment, bool stdin = false)
    {
        var process = ChildProcess.Start(file, arguments, environment, _root, stdin);
        _processes.Add(process);
        return process;
    }

    private ChildProcess Node(string mode, Dictionary<string, string> environment, bool stdin = false)
    {
        var directory = Path.Combine(_root, "tests", "mcp", "node");
        Assert.That(Directory.Exists(Path.Combine(directory, "node_modules", "@modelcontextprotocol", "sdk")), Is.True,
            "the TypeScript MCP SDK is not installed: run `npm ci` in tests/mcp/node (tests/run.sh does)");
        return ChildProcess.Start("node", [Path.Combine(directory, "mcp_client.mjs"), mode, _mcp.ToString()], environment, directory, stdin);
    }

    private static Func<string, bool> IsStep(string step) => line => line.StartsWith($"{{\"step\":\"{step}\"", StringComparison.Ordinal);

    private static JsonElement Step(string line) => JsonDocument.Parse(line).RootElement.Clone();

    private string SampleDll(string name)
    {
        var dll = Path.Combine(_root, "samples", name, "bin", "Release", "net10.0", name + ".dll");
        Assert.That(File.Exists(dll), Is.True, $"{dll} is missing: build the solution in Release first (tests/run.sh does)");
        return dll;
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
