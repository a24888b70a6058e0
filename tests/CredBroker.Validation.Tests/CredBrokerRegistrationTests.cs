using System.Net;
using System.Net.Http.Headers;
using CredBroker.Validation.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CredBroker.Validation.Tests;

/// <summary>
/// <c>AddAuthentication().AddCredBroker(o =&gt; ...)</c> as an application uses it: one call, keys from a real
/// JWKS endpoint over HTTP, revocations from a feed, background services owned by the host, a health
/// check per scheme, named schemes that share nothing, and bad settings that stop the host at start.
/// </summary>
[TestFixture]
public sealed class CredBrokerRegistrationTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private TestTokens _tokens = null!;
    private JwksServer _jwks = null!;

    [SetUp]
    public async Task SetUpAsync()
    {
        _tokens = new TestTokens();
        _jwks = await JwksServer.StartAsync(TestTokens.JwksOf(_tokens.Key));
    }

    [TearDown]
    public async Task TearDownAsync()
    {
        await _jwks.DisposeAsync();
        _tokens.Dispose();
    }

    [Test]
    public async Task OneCall_ValidatesTokensWithKeysFromTheJwksEndpoint_AndAppliesRevocations()
    {
        var feed = new ScriptedFeed();
        await using var app = await StartApiAsync(b => b.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksUri = _jwks.JwksUri;
            o.RevocationFeed = feed;
        }));
        using var http = app.GetTestClient();
        var token = _tokens.Mint(leaseId: "lease-9").AccessToken;
        await feed.HeartbeatAsync();
        await Until(async () => (await Get(http, "/read", token)).StatusCode == HttpStatusCode.OK, "the feed caught up (its first heartbeat)");

        var ok = await Get(http, "/read", token);
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await ok.Content.ReadAsStringAsync(), Is.EqualTo("hello " + TestTokens.AgentId));
        Assert.That(_jwks.Endpoint.Fetches, Is.GreaterThanOrEqualTo(1), "the keys came over HTTP from JwksUri");
        Assert.That((await Get(http, "/read", _tokens.Mint(audience: "other-api").AccessToken)).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));

        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-9", TestTokens.AgentId, _tokens.Now.AddHours(1)));

        await Until(async () => (await Get(http, "/read", token)).StatusCode == HttpStatusCode.Unauthorized, "the revocation reached the scheme");
        var refused = await Get(http, "/read", token);
        Assert.That(refused.Headers.WwwAuthenticate.ToString(), Does.Contain("error=\"invalid_token\"").And.Contain("revoked"));
    }

    [Test]
    public async Task BoundFromConfiguration()
    {
        await using var app = await StartApiAsync(b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["CredBroker:Issuer"] = TestTokens.Issuer,
                ["CredBroker:Audience"] = TestTokens.Audience,
                ["CredBroker:JwksUri"] = _jwks.JwksUri.ToString(),
                ["CredBroker:RequireRevocationFeed"] = "false",
                ["CredBroker:MaxClockSkew"] = "00:00:10",
            });
            b.Services.AddAuthentication().AddCredBroker(b.Configuration.GetSection("CredBroker"));
        });
        using var http = app.GetTestClient();

        Assert.That((await Get(http, "/read", _tokens.Mint().AccessToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var options = app.Services.GetRequiredService<IOptionsMonitor<CredBrokerOptions>>().Get(CredBrokerDefaults.AuthenticationScheme);
        Assert.That(options.MaxClockSkew, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(options.JwksUri, Is.EqualTo(_jwks.JwksUri));
    }

    [Test]
    public async Task TwoNamedSchemes_AreIndependent()
    {
        using var other = new TestTokens();
        await using var otherJwks = await JwksServer.StartAsync(TestTokens.JwksOf(other.Key));
        var feedA = new ScriptedFeed();
        var feedB = new ScriptedFeed();
        await using var app = await StartApiAsync(
            b => b.Services.AddAuthentication()
                .AddCredBroker("A", o =>
                {
                    o.Issuer = TestTokens.Issuer;
                    o.Audience = TestTokens.Audience;
                    o.JwksUri = _jwks.JwksUri;
                    o.RevocationFeed = feedA;
                })
                .AddCredBroker("B", o =>
                {
                    o.Issuer = TestTokens.Issuer;
                    o.Audience = "other-api";
                    o.JwksUri = otherJwks.JwksUri;
                    o.RevocationFeed = feedB;
                }),
            app =>
            {
                app.MapGet("/a", (HttpContext c) => "a").RequireAuthorization(p => p.RequireScope("demo:read", "A"));
                app.MapGet("/b", (HttpContext c) => "b").RequireAuthorization(p => p.RequireScope("demo:read", "B"));
            });
        using var http = app.GetTestClient();
        var forA = _tokens.Mint(leaseId: "lease-1").AccessToken;
        var forB = other.Mint(audience: "other-api", leaseId: "lease-1").AccessToken;
        await feedA.HeartbeatAsync();
        await feedB.HeartbeatAsync();
        await Until(async () => (await Get(http, "/a", forA)).StatusCode == HttpStatusCode.OK, "A's feed caught up");
        await Until(async () => (await Get(http, "/b", forB)).StatusCode == HttpStatusCode.OK, "B's feed caught up");

        Assert.That((await Get(http, "/a", forA)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await Get(http, "/b", forB)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await Get(http, "/b", forA)).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "A's audience and key are not B's");
        Assert.That((await Get(http, "/a", forB)).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "B's audience and key are not A's");

        // A revocation on A's feed: A refuses its token for lease-1, B still serves its own lease-1.
        await feedA.SendAsync(new RevocationNotice("c1", "lease", "lease-1", TestTokens.AgentId, _tokens.Now.AddHours(1)));
        await Until(async () => (await Get(http, "/a", forA)).StatusCode == HttpStatusCode.Unauthorized, "A applied its revocation");
        Assert.That((await Get(http, "/b", forB)).StatusCode, Is.EqualTo(HttpStatusCode.OK));

        var services = app.Services.GetServices<IHostedService>().OfType<CredBrokerBackgroundService>().Select(s => s.Scheme);
        Assert.That(services, Is.EquivalentTo(new[] { "A", "B" }), "one background service per scheme");
        Assert.That(feedA.Requests, Is.Not.Empty);
        Assert.That(feedB.Requests, Is.Not.Empty);

        // B resyncs after an expired cursor (not caught up), A does not: each scheme has its own health check.
        feedB.Break(new RevocationCursorExpiredException("too old"));
        var health = app.Services.GetRequiredService<HealthCheckService>();
        await Until(async () => (await health.CheckHealthAsync()).Entries["credbroker-B"].Status == HealthStatus.Unhealthy, "B replaying");
        Assert.That((await health.CheckHealthAsync()).Entries["credbroker-A"].Status, Is.EqualTo(HealthStatus.Healthy));
        Assert.That((await Get(http, "/b", forB)).Headers.WwwAuthenticate.ToString(), Does.Contain("revocations_not_synced"), "B refuses while replaying");
        Assert.That((await Get(http, "/a", forA)).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "A still refuses its revoked lease");
    }

    [TestCase("Issuer", "Issuer")]
    [TestCase("Audience", "Audience")]
    [TestCase("RevocationFeed", "RevocationFeed")]
    [TestCase("JwksUri", "JwksUri")]
    [TestCase("MaxClockSkew", "MaxClockSkew")]
    [TestCase("RevocationMaxOutage", "RevocationMaxOutage")]
    public void BadOptions_StopTheHostAtStart_NamingTheSetting(string broken, string named)
    {
        var error = Assert.CatchAsync(async () =>
        {
            await using var app = await StartApiAsync(b => b.Services.AddAuthentication().AddCredBroker("api", o =>
            {
                o.Issuer = broken == "Issuer" ? "" : TestTokens.Issuer;
                o.Audience = broken == "Audience" ? null : TestTokens.Audience;
                o.JwksUri = broken == "JwksUri" ? new Uri("http://broker.example/.well-known/jwks.json") : _jwks.JwksUri;
                o.RevocationFeed = broken == "RevocationFeed" ? null : new ScriptedFeed();
                o.MaxClockSkew = broken == "MaxClockSkew" ? TimeSpan.FromMinutes(10) : o.MaxClockSkew;
                o.RevocationMaxOutage = broken == "RevocationMaxOutage" ? TimeSpan.Zero : o.RevocationMaxOutage;
            }));
        });

        var message = error is AggregateException all ? string.Join(" | ", all.Flatten().InnerExceptions.Select(e => e.Message)) : error!.Message;
        Assert.That(error is OptionsValidationException || (error as AggregateException)?.InnerExceptions.All(e => e is OptionsValidationException) == true, error!.ToString());
        Assert.That(message, Does.Contain($"CredBroker scheme 'api': {named} "), message);
    }

    [Test]
    public void BadConfiguration_StopsTheHostAtStart_NamingTheSetting()
    {
        var error = Assert.CatchAsync(async () =>
        {
            await using var app = await StartApiAsync(b =>
            {
                b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["CredBroker:Issuer"] = TestTokens.Issuer,
                    ["CredBroker:RequireRevocationFeed"] = "false",
                });
                b.Services.AddAuthentication().AddCredBroker(b.Configuration.GetSection("CredBroker"));
            });
        });

        Assert.That(error, Is.InstanceOf<OptionsValidationException>());
        Assert.That(error!.Message, Does.Contain("CredBroker scheme 'CredBroker': Audience is required"));
    }

    [Test]
    public async Task BackgroundService_StartsAndStopsWithTheHost()
    {
        var feed = new ScriptedFeed();
        var app = await StartApiAsync(b => b.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksUri = _jwks.JwksUri;
            o.JwksRefreshInterval = TimeSpan.FromMilliseconds(50);
            o.RevocationFeed = feed;
        }));
        await using (app)
        {
            // Running: the keys are refreshed again and again, the feed is being read; no request needed.
            await Until(() => Task.FromResult(_jwks.Endpoint.Fetches >= 3 && feed.Open == 1), "keys refreshed and the feed watched");
            var service = app.Services.GetServices<IHostedService>().OfType<CredBrokerBackgroundService>().Single();

            await app.StopAsync();

            Assert.That(service.ExecuteTask, Is.Not.Null);
            Assert.That(service.ExecuteTask!.IsCompleted, Is.True, "stopped with the host");
            Assert.That(service.ExecuteTask.IsFaulted, Is.False, service.ExecuteTask.Exception?.ToString());
            Assert.That(feed.Open, Is.Zero, "the feed is no longer read");
        }
    }

    [Test]
    public async Task BrokerUnreachableAtStart_KeysArriveWithoutARequest_OnceItIsUp()
    {
        _jwks.Endpoint.Failure = new InvalidOperationException("not up yet");
        await using var app = await StartApiAsync(b => b.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksUri = _jwks.JwksUri;
            o.RequireRevocationFeed = false;
        }));
        using var http = app.GetTestClient();
        await Until(() => Task.FromResult(_jwks.Endpoint.Fetches >= 1), "first attempt");
        Assert.That(await Health(http), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")));

        _jwks.Endpoint.Failure = null;

        // Retried in the background well before the 5-minute refresh interval.
        await Until(async () => await Health(http) == (HttpStatusCode.OK, "Healthy"), "keys fetched on retry");
        Assert.That((await Get(http, "/read", _tokens.Mint().AccessToken)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task HealthCheck_UnhealthyUntilTheFeedCaughtUp_DegradedWhileReconnecting_UnhealthyPastTheGracePeriod()
    {
        var feed = new ScriptedFeed();
        await using var app = await StartApiAsync(b => b.Services.AddAuthentication().AddCredBroker(o =>
        {
            o.Issuer = TestTokens.Issuer;
            o.Audience = TestTokens.Audience;
            o.JwksUri = _jwks.JwksUri;
            o.RevocationFeed = feed;
            o.RevocationMaxOutage = TimeSpan.FromSeconds(30);
        }));
        using var http = app.GetTestClient();
        var health = app.Services.GetRequiredService<HealthCheckService>();

        // Keys loaded and the feed connected, but the broker may still be replaying: not ready.
        await Until(async () => _jwks.Endpoint.Fetches >= 1 && feed.Open == 1
            && (await health.CheckHealthAsync()).Entries["credbroker-CredBroker"].Description == "revocation feed has not caught up yet", "keys loaded, feed replaying");
        await feed.SendAsync(new RevocationNotice("c1", "lease", "lease-old", TestTokens.AgentId, _tokens.Now.AddHours(1)));
        Assert.That(await Health(http), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")));

        await feed.HeartbeatAsync();
        await Until(async () => await Health(http) == (HttpStatusCode.OK, "Healthy"), "caught up");

        feed.Break(new IOException("connection reset"));
        await Until(async () => await Health(http) == (HttpStatusCode.OK, "Degraded"), "reconnecting within the grace period");

        _tokens.Clock.Advance(TimeSpan.FromSeconds(31));
        Assert.That(await Health(http), Is.EqualTo((HttpStatusCode.ServiceUnavailable, "Unhealthy")), "silent past the grace period");
        var entry = (await health.CheckHealthAsync()).Entries["credbroker-CredBroker"];
        Assert.That(entry.Description, Does.Contain("silent for 31 s"));

        await feed.HeartbeatAsync("hb2");
        await Until(async () => await Health(http) == (HttpStatusCode.OK, "Healthy"), "live again");
    }

    private async Task<WebApplication> StartApiAsync(Action<WebApplicationBuilder> register, Action<WebApplication>? map = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTestServer();
        builder.Services.AddSingleton<TimeProvider>(_tokens.Clock);
        register(builder);
        builder.Services.AddAuthorization();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/read", (HttpContext c) => "hello " + c.User.FindFirst("sub")!.Value).RequireAuthorization(p => p.RequireScope("demo:read"));
        app.MapHealthChecks("/healthz");
        map?.Invoke(app);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return app;
    }

    private static Task<HttpResponseMessage> Get(HttpClient http, string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http.SendAsync(request);
    }

    private static async Task<(HttpStatusCode, string)> Health(HttpClient http)
    {
        var response = await http.GetAsync("/healthz");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"not reached in {Patience.TotalSeconds} s: {what}");
            await Task.Delay(20);
        }
    }
}
