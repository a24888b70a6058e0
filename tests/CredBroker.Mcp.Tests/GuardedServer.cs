using ToolDescription = System.ComponentModel.DescriptionAttribute;
using System.Security.Claims;
using System.Text.Encodings.Web;
using CredBroker.Testing;
using CredBroker.Validation.AspNetCore;
using CredBroker.Validation.Mcp;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using ModelContextProtocol.Server;

namespace CredBroker.Mcp.Tests;

/// <summary>
/// An MCP server guarded by CredBroker.Validation.Mcp, in process on a free loopback port (Kestrel, streamable HTTP).
/// Tokens come from a stand-in scheme instead of a broker: <c>Authorization: Bearer scopes=demo:read,demo:write</c>
/// authenticates with those scopes, <c>Bearer revoked</c> fails like a revoked CredBroker token. The guard under test
/// (challenges, metadata, the scope filters and the HTTP pre-check) is the real one.
/// </summary>
public sealed class GuardedServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GuardedServer(WebApplication app, Uri endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public Uri Endpoint { get; }

    public Uri Origin => new(Endpoint.GetLeftPart(UriPartial.Authority));

    public static async Task<GuardedServer> StartAsync(Action<CredBrokerMcpOptions>? configure = null)
    {
        var port = RedisServer.FreePort();
        var endpoint = new Uri($"http://127.0.0.1:{port}/mcp");
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddAuthentication(CredBrokerMcpDefaults.AuthenticationScheme)
            .AddScheme<AuthenticationSchemeOptions, StandInTokenHandler>("StandIn", null)
            .AddCredBrokerMcp(o =>
            {
                o.Resource = endpoint;
                o.AuthorizationServers.Add(new Uri("http://127.0.0.1:5400"));
                o.TokenScheme = "StandIn";
                configure?.Invoke(o);
            });
        builder.Services.AddAuthorization();
        builder.Services.AddMcpServer().WithHttpTransport().WithTools<TestTools>().WithTools<AdminTools>().AddCredBrokerScopes();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapCredBrokerProtectedResourceMetadata();
        app.MapMcp("/mcp").RequireCredBrokerToken();
        await app.StartAsync();
        return new GuardedServer(app, endpoint);
    }

    /// <summary>An MCP C# SDK client whose requests carry <paramref name="token"/>.</summary>
    public Task<McpClient> ConnectAsync(string token)
    {
        var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        var transport = new HttpClientTransport(new HttpClientTransportOptions { Endpoint = Endpoint, TransportMode = HttpTransportMode.StreamableHttp }, http, ownsHttpClient: true);
        return McpClient.CreateAsync(transport);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Stands in for the CredBroker handler: same claim shape (one <c>scope</c> claim per scope), same failure message format.</summary>
public sealed class StandInTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var token = header["Bearer ".Length..];
        if (!token.StartsWith("scopes=", StringComparison.Ordinal))
        {
            return Task.FromResult(AuthenticateResult.Fail("invalid_token: revoked"));
        }

        var claims = new List<Claim> { new("sub", "test-agent"), new(ClaimTypes.NameIdentifier, "test-agent") };
        claims.AddRange(token["scopes=".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => new Claim(CredBrokerDefaults.ScopeClaim, s)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme.Name, "sub", null));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, Scheme.Name)));
    }
}

[McpServerToolType]
public sealed class TestTools
{
    [McpServerTool(Name = "list_tickets"), ToolDescription("Lists tickets.")]
    [RequireScope("demo:read")]
    public static string ListTickets() => "T-1, T-2";

    [McpServerTool(Name = "close_ticket"), ToolDescription("Closes a ticket.")]
    [RequireScope("demo:write")]
    public static string CloseTicket(string id) => id + " closed";

    [McpServerTool(Name = "ping"), ToolDescription("Declares no scope.")]
    public static string Ping() => "pong";
}

/// <summary>Class-level and method-level scopes: <c>purge_tickets</c> needs both.</summary>
[McpServerToolType]
[RequireScope("demo:admin")]
public sealed class AdminTools
{
    [McpServerTool(Name = "purge_tickets"), ToolDescription("Purges closed tickets.")]
    [RequireScope("demo:write")]
    public static string PurgeTickets() => "purged";
}
