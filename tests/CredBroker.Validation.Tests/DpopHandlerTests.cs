using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using CredBroker.Testing;
using CredBroker.Validation.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CredBroker.Validation.Tests;

/// <summary>
/// The ASP.NET Core handler with <c>Authorization: DPoP</c> (RFC 9449 §7) on a real Kestrel listener:
/// htm and htu from the request, ath, the iat window, jti replay, cnf.jkt; a DPoP-bound token as Bearer is refused.
/// </summary>
[TestFixture]
public sealed class DpopHandlerTests
{
    private TestTokens _tokens = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private DpopKey _key = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _tokens = new TestTokens();
        _key = DpopKey.Generate();
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
            o.RequireRevocationFeed = false;
        });
        builder.Services.AddAuthorization();
        _app = builder.Build();
        _app.UseAuthentication();
        _app.UseAuthorization();
        _app.MapGet("/read", (HttpContext c) => "hello " + c.User.FindFirst("cnf_jkt")?.Value).RequireAuthorization(p => p.RequireScope("demo:read"));
        _app.MapPost("/read", () => "posted").RequireAuthorization(p => p.RequireScope("demo:read"));
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()) };
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        _tokens.Dispose();
        _key.Dispose();
    }

    private string Bound(DpopKey? key = null) => _tokens.Minter.Mint(
        TestTokens.Lease("lease-1", TestTokens.Audience), TestTokens.Agent(), ["demo:read"], TestTokens.Audience, null, (key ?? _key).Thumbprint).AccessToken;

    private Uri Url(string path = "/read") => new(_http.BaseAddress!, path);

    private async Task<HttpResponseMessage> SendAsync(string scheme, string token, params string[] proofs) => await SendAsync(HttpMethod.Get, scheme, token, proofs);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string scheme, string token, params string[] proofs)
    {
        using var request = new HttpRequestMessage(method, "/read");
        request.Headers.Authorization = new AuthenticationHeaderValue(scheme, token);
        foreach (var proof in proofs)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await _http.SendAsync(request);
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage response, string error, string reason)
    {
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), await response.Content.ReadAsStringAsync());
        var challenge = response.Headers.WwwAuthenticate.ToString();
        Assert.That(challenge, Does.StartWith("DPoP ").And.Contain($"error=\"{error}\"").And.Contain(reason).And.Contain("algs=\"ES256"), challenge);
    }

    [Test]
    public async Task DpopTokenWithAValidProof_IsServed()
    {
        var token = Bound();
        var response = await SendAsync("DPoP", token, _key.CreateProof("GET", Url(), token, _tokens.Now));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("hello " + _key.Thumbprint));
    }

    [Test]
    public async Task DpopBoundTokenAsBearer_IsRefused() =>
        await AssertRefusedAsync(await SendAsync("Bearer", Bound()), "invalid_token", DpopErrors.Binding);

    [Test]
    public async Task ProofByAnotherKey_IsRefused()
    {
        using var other = DpopKey.Generate();
        var token = Bound();
        await AssertRefusedAsync(await SendAsync("DPoP", token, other.CreateProof("GET", Url(), token, _tokens.Now)), "invalid_token", DpopErrors.Binding);
    }

    [Test]
    public async Task EachRequestCheck_RefusesWithItsReason()
    {
        var token = Bound();
        await AssertRefusedAsync(await SendAsync("DPoP", token), "invalid_dpop_proof", DpopErrors.Missing);
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("POST", Url(), token, _tokens.Now)), "invalid_dpop_proof", DpopErrors.Method);
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("GET", Url("/other"), token, _tokens.Now)), "invalid_dpop_proof", DpopErrors.Uri);
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("GET", Url(), "another-token", _tokens.Now)), "invalid_dpop_proof", DpopErrors.AccessTokenHash);
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("GET", Url(), token, _tokens.Now.AddMinutes(-5))), "invalid_dpop_proof", DpopErrors.IssuedAt);
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("GET", Url(), token, _tokens.Now), _key.CreateProof("GET", Url(), token, _tokens.Now)),
            "invalid_dpop_proof", DpopErrors.Multiple);
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await AssertRefusedAsync(await SendAsync("DPoP", token, DpopProofs.Make(ec, Url().AbsoluteUri, header: h => h["typ"] = "JWT", now: _tokens.Now)), "invalid_dpop_proof", DpopErrors.Type);
    }

    [Test]
    public async Task ReplayedProof_IsRefused_ButAPostWithItsOwnProofIsServed()
    {
        var token = Bound();
        var proof = _key.CreateProof("GET", Url(), token, _tokens.Now);

        var first = await SendAsync("DPoP", token, proof);
        var replay = await SendAsync("DPoP", token, proof);
        var post = await SendAsync(HttpMethod.Post, "DPoP", token, _key.CreateProof("POST", Url(), token, _tokens.Now));

        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        await AssertRefusedAsync(replay, "invalid_dpop_proof", DpopErrors.Replay);
        Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task UnboundTokenWithDpopScheme_IsRefused_AndAsBearerIsServed()
    {
        var token = _tokens.Mint().AccessToken;
        await AssertRefusedAsync(await SendAsync("DPoP", token, _key.CreateProof("GET", Url(), token, _tokens.Now)), "invalid_token", DpopErrors.Binding);
        Assert.That((await SendAsync("Bearer", token)).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }
}
