// A sample agent runtime that reaches its tools over MCP (the MCP C# SDK client) with one task's CredBroker token:
// begin a task, list and call tools, renew near exp, see a tool outside the token refused, complete the task and see
// the server refuse the token at once; then ask for a toxic combination and see the broker deny it.
//   CREDBROKER_DEV_SECRET=dev-secret dotnet run --project src/CredBroker.Server -- --dev --CredBroker:AgentsFile=samples/policy/mcp.yaml
//   CREDBROKER_DEV_SECRET=dev-secret dotnet run --project samples/McpServer      (http://127.0.0.1:5600/mcp)
//   CREDBROKER_DEV_SECRET=dev-secret dotnet run --project samples/McpAgent
// Settings: CREDBROKER_ADDRESS (agent listener, default http://127.0.0.1:5401), MCP_URL (default http://127.0.0.1:5600/mcp).
using System.Diagnostics;
using System.Net;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using McpAgentSample;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

var secret = Environment.GetEnvironmentVariable("CREDBROKER_DEV_SECRET");
if (string.IsNullOrEmpty(secret))
{
    Console.Error.WriteLine("Set CREDBROKER_DEV_SECRET to the agent secret the dev broker printed.");
    return 2;
}

var brokerAddress = new Uri(Environment.GetEnvironmentVariable("CREDBROKER_ADDRESS") is { Length: > 0 } a ? a : "http://127.0.0.1:5401");
var mcpUrl = new Uri(Environment.GetEnvironmentVariable("MCP_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:5600/mcp");
await using var services = new ServiceCollection()
    .AddCredBrokerClient(o => { o.Address = brokerAddress; o.Credential = secret; })
    .BuildServiceProvider(validateScopes: true);
var broker = services.GetRequiredService<CredBrokerClient>();
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
var ct = stop.Token;
var ok = true;
var challenge = "";
void Expect(bool condition, string what)
{
    if (!condition)
    {
        ok = false;
        Console.WriteLine("UNEXPECTED: " + what);
    }
}

try
{
    // 1. One lease for this task, with the scopes of the tools it needs.
    var begun = await broker.BeginTaskAsync(new BeginTaskRequest
    {
        TaskId = "mcp-" + Guid.NewGuid().ToString("N"),
        Purpose = "triage and close stale tickets",
        Scopes = { "demo:read", "demo:write" },
        Audience = "demo-api",
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    }, ct);
    Console.WriteLine($"BeginTask: lease {begun.LeaseId}, scopes [{string.Join(' ', begun.GrantedScopes)}], token expires {begun.TokenExpiresAt.ToDateTimeOffset():u}");

    // 2. The reading phase gets a narrower token from the same lease: IssueToken with demo:read only.
    var reader = await broker.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "demo:read" } }, ct);
    Console.WriteLine($"IssueToken: scopes [{string.Join(' ', reader.GrantedScopes)}]");
    await using (var readOnly = await ConnectAsync(_ => Task.FromResult(reader.AccessToken)))
    {
        var visible = await ToolNamesAsync(readOnly);
        Console.WriteLine($"tools/list with the demo:read token: [{string.Join(' ', visible)}]");
        Expect(visible.SequenceEqual(["list_tickets"]), "the read token should see list_tickets only");
        Console.WriteLine($"tools/call list_tickets: {await CallAsync(readOnly, "list_tickets")}");
        var refused = await CallAsync(readOnly, "close_ticket", new() { ["id"] = "T-1" });
        Console.WriteLine($"tools/call close_ticket with the demo:read token: {refused}");
        Expect(refused.Contains("demo:write", StringComparison.Ordinal), "close_ticket should be refused naming demo:write");
    }

    // 3. The task's own token (both scopes), renewed ahead of exp by TaskToken on every request.
    var task = new TaskToken(broker, begun.LeaseId, begun.AccessToken, begun.TokenExpiresAt.ToDateTimeOffset(), TimeProvider.System);
    await using var client = await ConnectAsync(task.GetAsync);
    var all = await ToolNamesAsync(client);
    Console.WriteLine($"tools/list with the task token: [{string.Join(' ', all)}]");
    Expect(all.SequenceEqual(["close_ticket", "list_tickets"]), "the task token should see list_tickets and close_ticket");
    var closed = await CallAsync(client, "close_ticket", new() { ["id"] = "T-1" });
    Console.WriteLine($"tools/call close_ticket: {closed}");
    Expect(closed.StartsWith("ok:", StringComparison.Ordinal), "close_ticket should work with demo:write");

    // A long task keeps its lease alive: RenewLease returns a fresh token, used by the same MCP session.
    var renewed = await task.RenewAsync(ct);
    Console.WriteLine($"RenewLease: lease deadline {renewed.LeaseDeadline.ToDateTimeOffset():u}, token expires {renewed.TokenExpiresAt.ToDateTimeOffset():u}");
    var listed = await CallAsync(client, "list_tickets");
    Console.WriteLine($"tools/call list_tickets with the renewed token: {listed}");
    Expect(listed.StartsWith("ok:", StringComparison.Ordinal), "list_tickets should work with the renewed token");

    // 4. Done: the lease ends and the server learns it over the revocation feed, refusing the token at once.
    var done = await broker.CompleteTaskAsync(begun.LeaseId, ct);
    Console.WriteLine($"CompleteTask: {done.State}");
    var clock = Stopwatch.StartNew();
    var after = await CallAsync(client, "list_tickets");
    while (after.StartsWith("ok:", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(5))
    {
        await Task.Delay(20, ct);
        after = await CallAsync(client, "list_tickets");
    }

    Console.WriteLine($"tools/call list_tickets after completion: {after} (after {clock.ElapsedMilliseconds} ms)");
    Console.WriteLine($"  WWW-Authenticate: {challenge}");
    Expect(after.Contains("401", StringComparison.Ordinal), "the token should be refused (401) after CompleteTask");

    // 5. Reading customer records and posting to an external URL are each allowed, but not in one task.
    try
    {
        await broker.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "mcp-exfil-" + Guid.NewGuid().ToString("N"),
            Purpose = "send customer C-7's record to a webhook",
            Scopes = { "customers:read", "http:post:external" },
            Audience = "demo-api",
        }, ct);
        Expect(false, "the toxic combination customers:read + http:post:external should be denied");
    }
    catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
    {
        Console.WriteLine($"BeginTask customers:read + http:post:external: {e.StatusCode} {e.Detail}");
    }

    Console.WriteLine(ok ? "Every tool call was decided by the task's token: allowed in scope, refused outside it and after completion." : "UNEXPECTED: see above.");
    return ok ? 0 : 1;
}
catch (RpcException e)
{
    var rules = e.ErrorInfo?.Metadata.TryGetValue("rules", out var r) == true ? $" (rules: {r})" : "";
    Console.Error.WriteLine($"The broker at {brokerAddress} refused: {e.StatusCode} {e.Detail}{rules}");
    return 1;
}
catch (HttpRequestException e) when (e.StatusCode is null)
{
    Console.Error.WriteLine($"The MCP server at {mcpUrl} is not reachable ({e.Message}): start it with `dotnet run --project samples/McpServer`.");
    return 1;
}

async Task<McpClient> ConnectAsync(Func<CancellationToken, Task<string>> token)
{
    var http = new HttpClient(new TaskTokenHandler(token, c => challenge = c));
    var transport = new HttpClientTransport(new HttpClientTransportOptions { Endpoint = mcpUrl, TransportMode = HttpTransportMode.StreamableHttp }, http, ownsHttpClient: true);
    return await McpClient.CreateAsync(transport, new McpClientOptions { ClientInfo = new() { Name = "credbroker-mcp-agent", Version = "1.0.0" } }, cancellationToken: ct);
}

async Task<List<string>> ToolNamesAsync(McpClient mcp) =>
    (await mcp.ListToolsAsync(cancellationToken: ct)).Select(t => t.Name).Order(StringComparer.Ordinal).ToList();

// "ok: <text>" for a result; the refusal otherwise (the HTTP status and the server's message naming the scope).
async Task<string> CallAsync(McpClient mcp, string tool, Dictionary<string, object?>? arguments = null)
{
    try
    {
        var result = await mcp.CallToolAsync(tool, arguments, cancellationToken: ct);
        var text = string.Join(" | ", result.Content.OfType<TextContentBlock>().Select(c => c.Text.ReplaceLineEndings(", ")));
        return result.IsError == true ? "tool error: " + text : "ok: " + text;
    }
    catch (HttpRequestException e) when (e.StatusCode is { } status)
    {
        return $"refused, HTTP {(int)status}: {e.Message}";
    }
    catch (McpException e)
    {
        return "refused: " + e.Message;
    }
}
