using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CredBroker.Validation.Tests;

/// <summary>The broker's <c>/.well-known/jwks.json</c> on a real loopback HTTP listener, served from a <see cref="FakeJwksEndpoint"/> (503 while it fails).</summary>
internal sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private JwksServer(WebApplication app, FakeJwksEndpoint endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public FakeJwksEndpoint Endpoint { get; }

    public Uri JwksUri => new(_app.Urls.First() + "/.well-known/jwks.json");

    public static async Task<JwksServer> StartAsync(string document)
    {
        var endpoint = new FakeJwksEndpoint(document);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapGet("/.well-known/jwks.json", async (HttpContext c) =>
        {
            try
            {
                return Results.Text(await endpoint.FetchAsync(c.RequestAborted), "application/json");
            }
            catch (InvalidOperationException)
            {
                return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
            }
        });
        await app.StartAsync();
        return new JwksServer(app, endpoint);
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
