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

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _tokens = new TestTokens();
        _feed = new ScriptedFeed();
        (_app, _http) = await StartAppAsync(_tokens, _feed);

        // The broker's first heartbeat (right after its replay) is what lets the scheme accept tokens.
        await _feed.HeartbeatAsync();
        await Until(_http, "/read", _tokens.Mint().AccessToken, HttpStatusCode.OK);
    }

    private static async Task<(WebApplication App, HttpClient Http)> StartAppAsync(TestTokens tokens, ScriptedFeed feed, Action<CredBrokerOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSingleton<TimeProvider>(tokens.Clock);
        var jwks = new FakeJwksEndpoint(TestTokens.JwksOf(tokens.Key));
        builder.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksFetcher = jwks.FetchAsync;
            o.RevocationFeed = feed;
            configure?.Invoke(o);
        });
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/read", (HttpContext c) => "hello " + c.User.FindFirst("sub")!.Value).RequireAuthorization(p => p.RequireScope("demo:read"));
        app.MapGet("/admin", () => "admin").RequireAuthorization(p => p.RequireScope("demo:admin"));
        await app.StartAsync();
        return (app, new HttpClient { BaseAddress = new Uri(app.Urls.First()) });
    }

    private static async Task<HttpResponseMessage> Until(HttpClient http, string path, string token, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var response = await Send(http, path, token);
            if (response.StatusCode == expected || DateTime.UtcNow > deadline)
            {
                return response;
            }

            await Task.Delay(20);
        }
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
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer, DPoP algs=\"ES256 ES384 ES512 PS256 RS256\""), "both schemes offered (RFC 9449 §7.1)");
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

    /// <summary>Issue 15 item 12: an empty deny list right after start proves nothing; tokens wait for the feed's first heartbeat.</summary>
    [Test]
    public async Task BeforeTheFeedCaughtUp_TokensAre401RevocationsNotSynced_UntilItsFirstHeartbeat()
    {
        var feed = new ScriptedFeed();
        var (app, http) = await StartAppAsync(_tokens, feed);
        await using var _ = app;
        using var __ = http;
        var token = _tokens.Mint().AccessToken;

        var early = await Send(http, "/read", token);
        Assert.That(early.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(early.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer error=\"invalid_token\", error_description=\"revocations_not_synced\""));

        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-old", TestTokens.AgentId, _tokens.Now.AddHours(1)));
        var replaying = await Send(http, "/read", token);
        Assert.That(replaying.Headers.WwwAuthenticate.ToString(), Does.Contain("revocations_not_synced"), "events before the heartbeat are the replay");

        await feed.HeartbeatAsync();
        Assert.That((await Until(http, "/read", token, HttpStatusCode.OK)).StatusCode, Is.EqualTo(HttpStatusCode.OK), "caught up: tokens are validated");
    }

    [Test]
    public async Task AcceptBeforeCaughtUp_IsAnExplicitOptOut()
    {
        var feed = new ScriptedFeed();
        var (app, http) = await StartAppAsync(_tokens, feed, o => o.RevocationAcceptBeforeCaughtUp = true);
        await using var _ = app;
        using var __ = http;

        Assert.That((await Send(http, "/read", _tokens.Mint().AccessToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    private Task<HttpResponseMessage> Get(string path, string? token) => Send(_http, path, token);

    private static Task<HttpResponseMessage> Send(HttpClient http, string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http.SendAsync(request);
    }
}
