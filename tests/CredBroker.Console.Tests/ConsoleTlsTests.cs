using System.Net;
using System.Security.Cryptography.X509Certificates;
using CredBroker.Testing;
using CredBroker.Testing.Grpc;

namespace CredBroker.Console.Tests;

/// <summary>
/// The console in production mode with TLS: h2 (or HTTP/1.1) over TLS only, HSTS, Secure sign-in
/// cookies, and the sign-in request goes over the back channel (PAR) with no token in any URL.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConsoleTlsTests
{
    [Test]
    public async Task WithTls_TheConsoleServesOnlyTls_AndSignInUsesSecureCookies_AndNoTokenInAUrl()
    {
        var (console, idpPort) = (RedisServer.FreePort(), RedisServer.FreePort());
        using var idp = await ConsoleEnvironment.StartIdpAsync(idpPort, $"https://localhost:{console}/signin-oidc");
        using var redis = RedisServer.Start();
        using var certificates = TestCertificates.Create();
        await using var broker = new ProductionBroker();
        var authority = $"http://127.0.0.1:{idpPort}";
        try
        {
            await broker.StartAsync(redis.ConnectionString,
                $"--CredBroker:Listen:Tls:CertificateFile={certificates.ServerCertFile}",
                $"--CredBroker:Listen:Tls:KeyFile={certificates.ServerKeyFile}",
                $"--CredBroker:Listen:ConsolePort={console}",
                $"--CredBroker:Console:Oidc:Authority={authority}",
                $"--CredBroker:Console:Oidc:ClientId={ConsoleEnvironment.ClientId}",
                $"--CredBroker:Operators:Subjects:0={ProductionBroker.Issuer}|{ProductionBroker.Operator}",
                $"--CredBroker:Operators:Issuers:1:Issuer={authority}",
                $"--CredBroker:Operators:Issuers:1:Audience={ConsoleEnvironment.ClientId}",
                $"--CredBroker:Operators:Issuers:1:JwksUri={authority}/jwks");

            using var handler = new HttpClientHandler
            {
                AllowAutoRedirect = false,
                UseCookies = false,
                ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(certificates.Ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return certificate is not null && chain.Build(certificate);
                },
            };
            using var https = new HttpClient(handler);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"https://localhost:{console}/signin") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var page = await https.SendAsync(request);
            Assert.That((page.StatusCode, page.Version), Is.EqualTo((HttpStatusCode.OK, HttpVersion.Version20)), "h2 over TLS (HTTP/1.1 too)");
            Assert.That(page.Headers.GetValues("Strict-Transport-Security").Single(), Does.StartWith("max-age="));

            using var challenge = await https.GetAsync($"https://localhost:{console}/signin/oidc");
            Assert.That(challenge.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
            var location = challenge.Headers.Location!.ToString();
            Assert.That(location, Does.StartWith(authority + "/auth?"));
            // The provider offers pushed authorization requests (RFC 9126), so the handler sends the code + PKCE request
            // (the provider requires PKCE: see idp.mjs) over the back channel and the browser carries only its handle.
            Assert.That(location, Does.Contain("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A").And.Contain("client_id=credbroker-console"));
            Assert.That(location, Does.Not.Contain("token").And.Not.Contain("code_verifier"), "no token or verifier in a URL");
            var cookies = challenge.Headers.GetValues("Set-Cookie").ToList();
            Assert.That(cookies, Has.Count.GreaterThanOrEqualTo(2), "nonce and correlation cookies");
            Assert.That(cookies, Has.All.Contains("secure").IgnoreCase.And.All.Contains("httponly").IgnoreCase.And.All.Contains("samesite=lax").IgnoreCase);

            using var cleartext = new HttpClient();
            Assert.ThrowsAsync<HttpRequestException>(() => cleartext.GetAsync($"http://localhost:{console}/signin"), "no cleartext on a TLS console");
        }
        finally
        {
            idp.Kill(entireProcessTree: true);
        }
    }
}
