using System.Net;
using System.Net.Http.Headers;
using CredBroker.Validation.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CredBroker.Validation.Tests;

/// <summary>The ASP.NET Core adapter on a real Kestrel listener: 401/403 per RFC 6750, scopes per endpoint, revocation.
/// Keys through <see cref="CredBrokerOptions.JwksFetcher"/> (the HTTP path is in <see cref="CredBrokerRegistrationTests"/>).</summary>
[TestFixture]
public sealed class AspNetCoreHandlerTests
{
    private TestTokens _tokens = null!;
    private ScriptedFeed _feed = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _tokens = new TestTokens();
        _feed = new ScriptedFeed();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSingleton<TimeProvider>(_tokens.Clock);
        var jwks = new FakeJwksEndpoint(TestTokens.JwksOf(_tokens.Key));
        builder.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksFetcher = jwks.FetchAsync;
            o.RevocationFeed = _feed;
        });
        builder.Services.AddAuthorization();
        _app = builder.Build();
        _app.UseAuthentication();
        _app.UseAuthorization();
        _app.MapGet("/read", (HttpContext c) => "hello " + c.User.FindFirst("sub")!.Value).RequireAuthorization(p => p.RequireScope("demo:read"));
        _app.MapGet("/admin", () => "admin").RequireAuthorization(p => p.RequireScope("demo:admin"));
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        _tokens.Dispose();
    }

    [Test]
    public async Task ValidTokenWithTheScope_IsServed()
    {
        var response = await Get("/read", _tokens.Mint().AccessToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("hello " + TestTokens.AgentId));
    }

    [Test]
    public async Task NoToken_Is401WithABareBearerChallenge()
    {
        var response = await Get("/read", null);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer"));
    }

    [Test]
    public async Task InvalidToken_Is401InvalidTokenWithTheReason()
    {
        var response = await Get("/read", _tokens.Mint(audience: "other-api").AccessToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("error=\"invalid_token\"").And.Contain("audience"));
    }

    [Test]
    public async Task MissingScope_Is403InsufficientScope()
    {
        var response = await Get("/admin", _tokens.Mint().AccessToken);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("insufficient_scope"));
    }

    [Test]
    public async Task RevokedLease_Is401()
    {
        var token = _tokens.Mint(leaseId: "lease-revoked").AccessToken;
        Assert.That((await Get("/read", token)).StatusCode, Is.EqualTo(HttpStatusCode.OK));

        await _feed.SendAsync(new RevocationNotice("c1", "lease", "lease-revoked", TestTokens.AgentId, _tokens.Now.AddHours(1)));

        var response = await Get("/read", token);
        for (var i = 0; i < 1500 && response.StatusCode == HttpStatusCode.OK; i++)
        {
            await Task.Delay(20);
            response = await Get("/read", token);
        }

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("revoked"));
    }

    private Task<HttpResponseMessage> Get(string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return _http.SendAsync(request);
    }
}
