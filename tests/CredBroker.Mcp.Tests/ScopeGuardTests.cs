using System.Net;
using System.Text;
using System.Text.Json;
using CredBroker.Validation.Mcp;
using ModelContextProtocol;

namespace CredBroker.Mcp.Tests;

/// <summary>
/// The reusable guard (CredBroker.Validation.Mcp) on a real streamable-HTTP MCP server, driven by the MCP C# SDK
/// client and by raw HTTP: tools/list filtered by scopes, refusals naming the missing scope (HTTP 403 and MCP
/// error), fail-closed tools without a scope, the MCP 401 challenge and the RFC 9728 metadata.
/// </summary>
[TestFixture]
public sealed class ScopeGuardTests
{
    private GuardedServer _server = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _server = await GuardedServer.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _server.DisposeAsync();

    [TestCase("demo:read", new[] { "list_tickets" })]
    [TestCase("demo:write", new[] { "close_ticket" })]
    [TestCase("demo:read,demo:write", new[] { "close_ticket", "list_tickets" })]
    [TestCase("demo:admin", new string[0])]
    [TestCase("demo:admin,demo:write", new[] { "close_ticket", "purge_tickets" })]
    [TestCase("other:scope", new string[0])]
    public async Task ToolsList_ShowsExactlyTheToolsTheTokensScopesAllow(string scopes, string[] expected)
    {
        await using var client = await _server.ConnectAsync("scopes=" + scopes);

        var tools = (await client.ListToolsAsync()).Select(t => t.Name).Order(StringComparer.Ordinal);

        Assert.That(tools, Is.EqualTo(expected), "ping declares no scope, so it is never listed by default");
    }

    [Test]
    public async Task ToolsCall_InScope_Works()
    {
        await using var client = await _server.ConnectAsync("scopes=demo:read,demo:write");

        var result = await client.CallToolAsync("close_ticket", new Dictionary<string, object?> { ["id"] = "T-9" });

        Assert.That(result.IsError, Is.Not.True);
        Assert.That(result.Content.OfType<ModelContextProtocol.Protocol.TextContentBlock>().Single().Text, Is.EqualTo("T-9 closed"));
    }

    [Test]
    public async Task ToolsCall_OutOfScope_OverHttp_Is403InsufficientScope_NamingTheScope()
    {
        using var http = new HttpClient();
        using var response = await PostAsync(http, "scopes=demo:read", """{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"close_ticket","arguments":{"id":"T-1"}}}""");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        var challenge = response.Headers.WwwAuthenticate.ToString();
        Assert.That(challenge, Does.StartWith("Bearer error=\"insufficient_scope\"").And.Contain("scope=\"demo:write\"")
            .And.Contain($"resource_metadata=\"{_server.Origin}.well-known/oauth-protected-resource\""));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = body.RootElement.GetProperty("error");
        Assert.That(body.RootElement.GetProperty("id").GetInt32(), Is.EqualTo(7), "the JSON-RPC id is echoed");
        Assert.That(error.GetProperty("code").GetInt32(), Is.EqualTo(CredBrokerMcpDefaults.InsufficientScopeError));
        Assert.That(error.GetProperty("message").GetString(), Does.Contain("close_ticket").And.Contain("'demo:write'"));
        Assert.That(error.GetProperty("data").GetProperty("missing_scopes")[0].GetString(), Is.EqualTo("demo:write"));
    }

    [Test]
    public async Task ToolsCall_OutOfScope_InABatch_Is403()
    {
        using var http = new HttpClient();
        using var response = await PostAsync(http, "scopes=demo:read",
            """[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"close_ticket","arguments":{"id":"T-1"}}}]""");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("scope=\"demo:write\""));
    }

    [Test]
    public async Task ToolsCall_OutOfScope_WithTheSdkClient_IsRefusedNamingTheScope()
    {
        await using var client = await _server.ConnectAsync("scopes=demo:read");

        var refusal = Assert.ThrowsAsync<HttpRequestException>(() => client.CallToolAsync("close_ticket", new Dictionary<string, object?> { ["id"] = "T-1" }).AsTask());

        Assert.That(refusal!.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(refusal.Message, Does.Contain("demo:write"));
        Assert.That((await client.CallToolAsync("list_tickets")).IsError, Is.Not.True, "the session goes on after a refusal");
    }

    [Test]
    public async Task ToolsCall_OutOfScope_WithoutTheHttpPreCheck_IsAnMcpErrorNamingTheScope()
    {
        await using var server = await GuardedServer.StartAsync(o => o.HttpInsufficientScope = false);
        await using var client = await server.ConnectAsync("scopes=demo:read");

        var refusal = Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("close_ticket", new Dictionary<string, object?> { ["id"] = "T-1" }).AsTask());

        Assert.That((int)refusal!.ErrorCode, Is.EqualTo(CredBrokerMcpDefaults.InsufficientScopeError));
        Assert.That(refusal.Message, Does.Contain("insufficient_scope").And.Contain("'demo:write'"));
    }

    [Test]
    public async Task ToolsCall_NeedsEveryScope_ClassAndMethod()
    {
        await using var server = await GuardedServer.StartAsync(o => o.HttpInsufficientScope = false);
        await using var client = await server.ConnectAsync("scopes=demo:write");

        var refusal = Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("purge_tickets").AsTask());

        Assert.That(refusal!.Message, Does.Contain("'demo:admin'").And.Not.Contain("'demo:write'"), "only the missing scope is named");
    }

    [Test]
    public async Task ToolWithoutScope_IsHiddenAndRefused_UnlessAllowed()
    {
        await using (var client = await _server.ConnectAsync("scopes=demo:read"))
        {
            var refusal = Assert.ThrowsAsync<HttpRequestException>(() => client.CallToolAsync("ping").AsTask());
            Assert.That(refusal!.Message, Does.Contain("declares no [RequireScope]"));
        }

        await using var lenient = await GuardedServer.StartAsync(o => o.AllowToolsWithoutScope = true);
        await using var allowed = await lenient.ConnectAsync("scopes=demo:read");
        Assert.That((await allowed.ListToolsAsync()).Select(t => t.Name), Is.EquivalentTo(new[] { "list_tickets", "ping" }));
        Assert.That((await allowed.CallToolAsync("ping")).IsError, Is.Not.True);
    }

    [Test]
    public async Task DuplicateKeys_CannotSmuggleACallPastTheGuard()
    {
        using var http = new HttpClient();
        using var initialize = await PostAsync(http, "scopes=demo:read",
            """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}""");
        Assert.That(initialize.IsSuccessStatusCode, Is.True, await initialize.Content.ReadAsStringAsync());
        var session = initialize.Headers.TryGetValues("Mcp-Session-Id", out var ids) ? ids.Single() : null;
        (await PostAsync(http, "scopes=demo:read", """{"jsonrpc":"2.0","method":"notifications/initialized"}""", session)).Dispose();

        // The pre-check cannot read a body with duplicate keys; the MCP filter decides on the name the server dispatches.
        using var response = await PostAsync(http, "scopes=demo:read",
            """{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_tickets","name":"close_ticket","arguments":{"id":"T-1"}}}""", session);
        var body = await response.Content.ReadAsStringAsync();

        Assert.That(body, Does.Not.Contain("T-1 closed"), "close_ticket must not run with a demo:read token");
        Assert.That(body, Does.Contain("\"error\""), "a JSON-RPC error (the SDK refuses duplicate keys; the scope filter would refuse close_ticket): " + body);
    }

    [Test]
    public async Task UnknownTool_IsRefused()
    {
        using var http = new HttpClient();
        using var response = await PostAsync(http, "scopes=demo:read", """{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_such_tool"}}""");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("tool 'no_such_tool' is not one of this server's tools"));
    }

    [Test]
    public async Task NoToken_Is401_WithTheResourceMetadata()
    {
        using var http = new HttpClient();
        using var response = await PostAsync(http, null, """{"jsonrpc":"2.0","id":1,"method":"tools/list"}""");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Is.EqualTo($"Bearer resource_metadata=\"{_server.Origin}.well-known/oauth-protected-resource\""));
    }

    [Test]
    public async Task RejectedToken_Is401_WithTheReasonAndTheResourceMetadata()
    {
        using var http = new HttpClient();
        using var response = await PostAsync(http, "some-revoked-token", """{"jsonrpc":"2.0","id":1,"method":"tools/list"}""");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("resource_metadata=").And.Contain("error=\"invalid_token\"").And.Contain("error_description=\"revoked\""));
    }

    [TestCase("/.well-known/oauth-protected-resource")]
    [TestCase("/.well-known/oauth-protected-resource/mcp")]
    public async Task ProtectedResourceMetadata_NamesTheResourceTheBrokerAndTheScopes(string path)
    {
        using var http = new HttpClient { BaseAddress = _server.Origin };
        using var response = await http.GetAsync(path);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var metadata = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = metadata.RootElement;
        Assert.That(root.GetProperty("resource").GetString(), Is.EqualTo(_server.Endpoint.ToString()));
        Assert.That(root.GetProperty("authorization_servers").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "http://127.0.0.1:5400" }));
        Assert.That(root.GetProperty("scopes_supported").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "demo:admin", "demo:read", "demo:write" }), "every scope a tool requires, sorted");
        Assert.That(root.GetProperty("bearer_methods_supported").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "header" }));
    }

    [TestCase("demo:*")]
    [TestCase("demo:read demo:write")]
    [TestCase(" ")]
    public void RequireScope_AcceptsOnlyOneConcreteScope(string scope) =>
        Assert.That(() => new RequireScopeAttribute(scope), Throws.InstanceOf<ArgumentException>());

    [Test]
    public void MissingResource_StopsTheHostAtStart()
    {
        var failure = Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
            await (await GuardedServer.StartAsync(o => o.Resource = null)).DisposeAsync());

        Assert.That(failure!.Message, Does.Contain("Resource"));
    }

    private async Task<HttpResponseMessage> PostAsync(HttpClient http, string? token, string json, string? session = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, _server.Endpoint) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        if (session is not null)
        {
            request.Headers.Add("Mcp-Session-Id", session);
            request.Headers.Add("MCP-Protocol-Version", "2025-06-18");
        }

        return await http.SendAsync(request);
    }
}
