using System.IO.Pipelines;
using System.Security.Claims;
using CredBroker.Validation.AspNetCore;
using CredBroker.Validation.Mcp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace CredBroker.Mcp.Tests;

/// <summary>
/// The scope filters without HTTP: an MCP server on a stream transport (as over stdio), the caller's user set by an
/// incoming message filter (where a host that authenticates another way would put it). Same decisions, MCP errors.
/// </summary>
[TestFixture]
public sealed class StreamTransportTests
{
    [Test]
    public async Task OnAStreamTransport_ListIsFiltered_AndACallOutsideTheScopesIsAnMcpError()
    {
        var (host, client) = await StartAsync(User("demo:read"));
        await using var _ = client;
        using var __ = host;

        Assert.That((await client.ListToolsAsync()).Select(t => t.Name), Is.EqualTo(new[] { "list_tickets" }));
        Assert.That((await client.CallToolAsync("list_tickets")).IsError, Is.Not.True);
        var refusal = Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("close_ticket", new Dictionary<string, object?> { ["id"] = "T-1" }).AsTask());
        Assert.That((int)refusal!.ErrorCode, Is.EqualTo(CredBrokerMcpDefaults.InsufficientScopeError));
        Assert.That(refusal.Message, Does.Contain("'demo:write'"));
        await host.StopAsync();
    }

    [Test]
    public async Task OnAStreamTransport_WithoutAUser_NothingIsListedOrCallable()
    {
        var (host, client) = await StartAsync(null);
        await using var _ = client;
        using var __ = host;

        Assert.That(await client.ListToolsAsync(), Is.Empty);
        var refusal = Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("list_tickets").AsTask());
        Assert.That(refusal!.Message, Does.Contain("needs a CredBroker token"));
        await host.StopAsync();
    }

    private static ClaimsPrincipal User(params string[] scopes) =>
        new(new ClaimsIdentity(scopes.Select(s => new Claim(CredBrokerDefaults.ScopeClaim, s)).Append(new Claim("sub", "agent")), "test"));

    private static async Task<(IHost Host, McpClient Client)> StartAsync(ClaimsPrincipal? user)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddMcpServer()
            .WithStreamServerTransport(toServer.Reader.AsStream(), toClient.Writer.AsStream())
            .WithTools<TestTools>()
            .WithMessageFilters(f => f.AddIncomingFilter(next => (context, cancellationToken) =>
            {
                context.User = user;
                return next(context, cancellationToken);
            }))
            .AddCredBrokerScopes();
        var host = builder.Build();
        await host.StartAsync();
        var client = await McpClient.CreateAsync(new StreamClientTransport(toServer.Writer.AsStream(), toClient.Reader.AsStream()));
        return (host, client);
    }
}
