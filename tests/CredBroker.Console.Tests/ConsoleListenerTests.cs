using System.Net;
using System.Text.RegularExpressions;
using CredBroker.Client;
using CredBroker.Server.Hosting;
using CredBroker.Testing;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;

namespace CredBroker.Console.Tests;

/// <summary>
/// The console listener over plain HTTP against a dev broker: it answers only on its own port
/// (and nothing else answers there), its headers, dev sign-in with the printed operator secret,
/// and the anti-forgery refusal.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed partial class ConsoleListenerTests
{
    private WebApplication _app = null!;
    private int _http;
    private int _operator;
    private int _console;
    private string _operatorSecret = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            (_http, _operator, _console) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
            var banner = new StringWriter();
            _app = BrokerApp.Create(["--dev", $"--CredBroker:Listen:HttpPort={_http}", $"--CredBroker:Listen:AgentPort={RedisServer.FreePort()}",
                $"--CredBroker:Listen:OperatorPort={_operator}", $"--CredBroker:Listen:ConsolePort={_console}"], banner);
            _operatorSecret = OperatorSecret().Match(banner.ToString()).Groups[1].Value;
            Assert.That(banner.ToString(), Does.Contain($"web console           http://127.0.0.1:{_console}/"));
            try
            {
                await _app.StartAsync();
                return;
            }
            catch (IOException) when (attempt < 5)
            {
                await _app.DisposeAsync();
            }
        }
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    [GeneratedRegex(@"operator secret:\s+(\S+)")]
    private static partial Regex OperatorSecret();

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    private (HttpClient Client, CookieContainer Cookies) Browser()
    {
        var cookies = new CookieContainer();
        var client = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{_console}") };
        return (client, cookies);
    }

    private static async Task<string> TokenAsync(HttpClient client, string page)
    {
        var html = await client.GetStringAsync(page);
        return AntiforgeryField().Match(html).Groups[1].Value;
    }

    private async Task<HttpClient> SignedInAsync()
    {
        var (client, _) = Browser();
        var token = await TokenAsync(client, "/signin");
        using var response = await client.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["secret"] = _operatorSecret }));
        Assert.That((response.StatusCode, response.Headers.Location?.ToString()), Is.EqualTo((HttpStatusCode.Redirect, "/approvals")));
        return client;
    }

    [Test]
    public async Task TheConsoleAnswersOnlyOnItsOwnPort_AndNothingElseAnswersThere()
    {
        using var plain = new HttpClient();
        Assert.That((await plain.GetAsync($"http://127.0.0.1:{_console}/signin")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await plain.GetAsync($"http://127.0.0.1:{_http}/signin")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "not on the JWKS/health listener");
        Assert.That((await plain.GetAsync($"http://127.0.0.1:{_http}/assets/console.css")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That((await plain.GetAsync($"http://127.0.0.1:{_http}/healthz")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        foreach (var path in new[] { "/healthz", "/readyz", "/.well-known/jwks.json", "/metrics" })
        {
            Assert.That((await plain.GetAsync($"http://127.0.0.1:{_console}{path}")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound), $"{path} is not on the console listener");
        }

        // The operator gRPC listener (h2c) does not serve the console ...
        using var h2c = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_operator}/signin") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        Assert.That((await plain.SendAsync(h2c)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));

        // ... and no gRPC service answers on the console listener, with a valid operator credential or without.
        using var grpc = new CredBrokerOperatorClient(new Uri($"http://127.0.0.1:{_console}"), () => _operatorSecret);
        var refused = Assert.ThrowsAsync<RpcException>(() => grpc.ListLeasesAsync(new Contracts.V1.ListLeasesRequest()));
        Assert.That(refused!.StatusCode, Is.Not.EqualTo(StatusCode.OK));
        using var operators = new CredBrokerOperatorClient(new Uri($"http://127.0.0.1:{_operator}"), () => _operatorSecret);
        Assert.That((await operators.ListLeasesAsync(new Contracts.V1.ListLeasesRequest())).Leases, Is.Not.Null, "the same call works on the operator listener");
    }

    [Test]
    public async Task Pages_CarryAStrictContentSecurityPolicy_AndDenyFraming()
    {
        using var plain = new HttpClient();
        foreach (var path in new[] { "/signin", "/approvals", "/no-such-page" })
        {
            using var response = await plain.GetAsync($"http://127.0.0.1:{_console}{path}");
            var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
            Assert.That(csp, Does.Contain("default-src 'none'").And.Contain("script-src 'self'").And.Contain("frame-ancestors 'none'").And.Not.Contain("unsafe"), path);
            Assert.That(response.Headers.GetValues("X-Content-Type-Options"), Is.EqualTo(new[] { "nosniff" }), path);
            Assert.That(response.Headers.GetValues("X-Frame-Options"), Is.EqualTo(new[] { "DENY" }), path);
            Assert.That(response.Headers.GetValues("Referrer-Policy"), Is.EqualTo(new[] { "no-referrer" }), path);
        }

        using var page = await plain.GetAsync($"http://127.0.0.1:{_console}/signin");
        var html = await page.Content.ReadAsStringAsync();
        Assert.That(html, Does.Not.Match("<script>|<script [^>]*>[^<]|<style| style=| on[a-z]+=\"").And.Not.Contain("http://").And.Not.Contain("https://"), "no inline script or style, no external asset");
        Assert.That(page.Headers.CacheControl?.NoStore, Is.True);
    }

    [Test]
    public async Task DevSignIn_TakesThePrintedOperatorSecret_AndSetsAnHttpOnlySameSiteCookie()
    {
        var (client, cookies) = Browser();
        var token = await TokenAsync(client, "/signin");
        using var wrong = await client.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["secret"] = "not-the-secret" }));
        Assert.That(wrong.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That((await client.GetAsync("/approvals")).Headers.Location?.ToString(), Is.EqualTo("/signin"), "still signed out");

        using var right = await client.PostAsync("/signin", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["secret"] = _operatorSecret }));
        Assert.That(right.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
        var session = right.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("credbroker-console=", StringComparison.Ordinal));
        Assert.That(session, Does.Contain("httponly").IgnoreCase.And.Contain("samesite=lax").IgnoreCase);
        var approvals = await client.GetStringAsync("/approvals");
        Assert.That(approvals, Does.Contain("Signed in as <strong>dev-operator</strong> (admin)"));
        Assert.That(cookies.GetAllCookies().Select(c => c.Value), Has.None.Contains(_operatorSecret), "the secret is not kept in a cookie");
    }

    [Test]
    public async Task APostWithoutTheAntiforgeryToken_IsRefused_AndWithItTheActionRuns()
    {
        var client = await SignedInAsync();
        using (var forged = await client.PostAsync("/agents/dev-agent/quarantine", new FormUrlEncodedContent(new Dictionary<string, string> { ["reason"] = "forged" })))
        {
            Assert.That(forged.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(await forged.Content.ReadAsStringAsync(), Does.Contain("anti-forgery token is missing or invalid"));
        }

        Assert.That(await client.GetStringAsync("/agents"), Does.Not.Contain("quarantined since"));
        var token = await TokenAsync(client, "/agents");
        using (var real = await client.PostAsync("/agents/dev-agent/quarantine", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["reason"] = "console test" })))
        {
            // Post/Redirect/Get: the result page is a GET (a refresh does not send the action again) that shows the message once.
            Assert.That((real.StatusCode, real.Headers.Location?.ToString()), Is.EqualTo((HttpStatusCode.SeeOther, "/agents")));
        }

        var after = await client.GetStringAsync("/agents");
        Assert.That(after, Does.Contain("dev-agent is quarantined").And.Contain("quarantined since"));
        Assert.That(await client.GetStringAsync("/agents"), Does.Not.Contain("dev-agent is quarantined:"), "the message is shown once");

        using (var release = await client.PostAsync("/agents/dev-agent/release", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token })))
        {
            Assert.That(release.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
        }

        Assert.That(await client.GetStringAsync("/agents"), Does.Contain("dev-agent is released"));

        // A refusal of the use case is a readable message with a matching status.
        using var noReason = await client.PostAsync("/leases/l0d_nosuchlease/revoke", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["reason"] = "x" }));
        Assert.That(noReason.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(await noReason.Content.ReadAsStringAsync(), Does.Contain("role=\"alert\"").And.Contain("not found"));
    }

    [Test]
    public async Task ALeasesPageThatCouldNotReadSomeShards_ShowsTheIncompleteBanner()
    {
        // A walk that skipped shards 1 and 3 (a lost Redis master) carries them in its page token; the page
        // it leads to names them (ListLeases unreachable_shards) and the console says the list is incomplete.
        var client = await SignedInAsync();
        var complete = await client.GetStringAsync("/leases");
        var partial = await client.GetStringAsync("/leases?page=" + Uri.EscapeDataString("p2.000a.5.0.l05_aaaaaaaaaaaaaaaaaaaaaaaaaa"));

        Assert.That(complete, Does.Not.Contain("the list is incomplete"));
        Assert.That(partial, Does.Contain("class=\"alert warning incomplete\" role=\"alert\"").And.Contain("Some shards could not be read; the list is incomplete.")
            .And.Contain("Lease shards 1, 3 are unreachable"));
    }

    [Test]
    public async Task SignedOut_PagesRedirectToSignIn_AndPostsAreRefused()
    {
        var (client, _) = Browser();
        foreach (var page in new[] { "/", "/approvals", "/leases", "/agents", "/audit", "/policy" })
        {
            using var response = await client.GetAsync(page);
            Assert.That((response.StatusCode, response.Headers.Location?.ToString()), Is.EqualTo((HttpStatusCode.Redirect, "/signin")), page);
        }

        var token = await TokenAsync(client, "/signin");
        using var post = await client.PostAsync("/agents/dev-agent/quarantine", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token, ["reason"] = "x" }));
        Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public void ProductionConsoleSettings_ThatCannotWork_StopTheStart()
    {
        var options = new BrokerOptions();
        options.Console.Oidc.Authority = "https://login.example.com";
        options.Console.Webhooks.Endpoints.Add(new BrokerOptions.WebhookEndpoint { Url = "http://hooks.example.com/x", SecretFile = "/nonexistent" });
        var problems = options.ConsoleProblems().ToList();
        Assert.That(problems, Has.Some.Contains("Console:Oidc:ClientId"));
        Assert.That(problems, Has.Some.Contains("must also be one of CredBroker:Operators:Issuers"));
        Assert.That(problems, Has.Some.Contains("Endpoints:0:Url must be an https URL"));
        Assert.That(problems, Has.Some.Contains("Endpoints:0:SecretFile"));
        options.Console.Oidc.Authority = "http://login.example.com";
        Assert.That(options.ConsoleProblems(), Has.Some.Contains("Authority must be an https URL"));
    }
}
