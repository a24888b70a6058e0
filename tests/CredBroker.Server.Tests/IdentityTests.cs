using System.Security.Cryptography;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Testing.Grpc;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace CredBroker.Server.Tests;

/// <summary>
/// Who is calling, on a production-mode broker with Redis: an OIDC issuer known by JWKS URL (with
/// key rotation), subject patterns, credential age, SPIFFE mTLS, operator roles, and credentials
/// refused on the wrong listener. Every credential is really signed; every refusal says why.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class IdentityTests
{
    private const string OidcIssuer = "https://oidc.test";

    [Test]
    public async Task JwksUriIssuer_PatternMapping_KeyRotation_Algorithms_AndCredentialAge()
    {
        using var redis = RedisServer.Start();
        using var first = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var second = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using var jwks = await JwksServer.StartAsync(ProductionBroker.Jwks((first, "k1")));
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString,
            $"--CredBroker:Identity:Issuers:1:Issuer={OidcIssuer}",
            $"--CredBroker:Identity:Issuers:1:Audience={ProductionBroker.BrokerAudience}",
            $"--CredBroker:Identity:Issuers:1:JwksUri={jwks.Uri}",
            "--CredBroker:Identity:Issuers:1:Algorithms:0=ES256",
            "--CredBroker:Identity:Issuers:1:MaxCredentialAge=00:30:00",
            "--CredBroker:Identity:Issuers:1:Workloads:0:Subject=spiffe://oidc.test/agents/{name}",
            "--CredBroker:Identity:Issuers:1:Workloads:0:Agent={name}");

        string Credential(ECDsa key, string kid, string name = "triage-agent", DateTime? issuedAt = null) =>
            broker.WorkloadToken($"spiffe://oidc.test/agents/{name}", issuer: OidcIssuer, key: key, kid: kid, issuedAt: issuedAt, lifetime: TimeSpan.FromHours(4));

        using (var agent = broker.ClientWithCredential(Credential(first, "k1")))
        {
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "via-jwks-uri", Scopes = { "tickets:read" } });
            Assert.That(begun.GrantedScopes, Is.EqualTo(new[] { "tickets:read" }), "the {name} pattern mapped the subject to triage-agent");
        }

        // The issuer rotates: a credential signed by a kid the broker has not seen triggers one refetch.
        jwks.Document = ProductionBroker.Jwks((first, "k1"), (second, "k2"));
        using (var rotated = broker.ClientWithCredential(Credential(second, "k2")))
        {
            Assert.That((await rotated.BeginTaskAsync(new BeginTaskRequest { TaskId = "after-rotation", Scopes = { "tickets:read" } })).LeaseId, Is.Not.Empty);
        }

        await AssertRefusedAsync(broker, Credential(first, "k1", "nobody-defined"), StatusCode.PermissionDenied, "No agent definition for 'nobody-defined'");
        await AssertRefusedAsync(broker, Credential(first, "k1", issuedAt: DateTime.UtcNow.AddHours(-2)), StatusCode.Unauthenticated, "issued more than");
        using var rsa = RSA.Create(2048);
        var rs256 = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
        {
            Issuer = OidcIssuer,
            Audience = ProductionBroker.BrokerAudience,
            Claims = new Dictionary<string, object> { ["sub"] = "spiffe://oidc.test/agents/triage-agent" },
            SigningCredentials = new(new Microsoft.IdentityModel.Tokens.RsaSecurityKey(rsa) { KeyId = "k1" }, "RS256"),
        });
        await AssertRefusedAsync(broker, rs256, StatusCode.Unauthenticated, "algorithm 'RS256' is not allowed for its issuer (allowed: ES256)");
        Assert.That(jwks.Requests, Is.EqualTo(2), "keys are cached: one fetch at first use, one for the new kid");
    }

    [Test]
    public async Task SpiffeClientCertificate_AuthenticatesTheAgent_OverMutualTls()
    {
        using var redis = RedisServer.Start();
        using var certificates = TestCertificates.Create();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString, [.. Tls(certificates),
            "--CredBroker:Identity:Certificates:0:Subject=spiffe://test.example/ns/agents/sa/{sa}",
            "--CredBroker:Identity:Certificates:0:Agent=triage-agent",
            $"--CredBroker:Operators:Grants:0:Certificate={TestCertificates.OperatorSpiffeId}",
            "--CredBroker:Operators:Grants:0:Roles:0=viewer"]);
        var agentAddress = new Uri($"https://127.0.0.1:{broker.AgentPort}");
        var operatorAddress = new Uri($"https://127.0.0.1:{broker.OperatorPort}");

        using (var agent = new CredBrokerClient(agentAddress, () => string.Empty, certificates.Client, certificates.Ca))
        {
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "mtls", Scopes = { "tickets:read" } });
            Assert.That(begun.AccessToken, Is.Not.Empty, "no bearer credential: the certificate's SPIFFE id is the identity");
        }

        using (var operatorOnAgentListener = new CredBrokerClient(agentAddress, () => string.Empty, certificates.OperatorClient, certificates.Ca))
        {
            var error = await Refused.CallAsync(() => operatorOnAgentListener.BeginTaskAsync(new BeginTaskRequest { TaskId = "x", Scopes = { "tickets:read" } }));
            Assert.That((error.StatusCode, error.Detail), Is.EqualTo((StatusCode.Unauthenticated, "An operator certificate is not accepted on the agent listener; use the operator listener.")));
        }

        using (var operatorByCertificate = new CredBrokerOperatorClient(operatorAddress, () => string.Empty, certificates.OperatorClient, certificates.Ca))
        {
            Assert.That((await operatorByCertificate.ListLeasesAsync(new ListLeasesRequest())).Leases, Has.Count.EqualTo(1));
            var denied = await Refused.CallAsync(() => operatorByCertificate.QuarantineAgentAsync("triage-agent", "viewer tries"));
            Assert.That(denied.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
            Assert.That(denied.Detail, Does.Contain("'revoker'").And.Contain("viewer"));
        }

        using (var agentOnOperatorListener = new CredBrokerOperatorClient(operatorAddress, () => string.Empty, certificates.Client, certificates.Ca))
        {
            Assert.That((await Refused.CallAsync(() => agentOnOperatorListener.ListLeasesAsync(new ListLeasesRequest()))).StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        }

        using var rogue = new CredBrokerClient(agentAddress, () => string.Empty, certificates.RogueClient, certificates.Ca);
        Refused.AssertTransport(await Refused.CallAsync(() => rogue.BeginTaskAsync(new BeginTaskRequest { TaskId = "rogue", Scopes = { "tickets:read" } })),
            "a certificate from another CA fails the TLS handshake");
    }

    [Test]
    public async Task OperatorRoles_FromSubjectsAndGroups_AreEnforcedPerRpc()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString,
            "--CredBroker:Operators:Grants:0:Subject=viewer@example.com",
            "--CredBroker:Operators:Grants:0:Roles:0=viewer",
            "--CredBroker:Operators:Grants:1:Group=sec-oncall",
            "--CredBroker:Operators:Grants:1:Roles:0=revoker");
        using var agent = broker.ClientFor("system:serviceaccount:support:triage");
        var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "roles", Scopes = { "tickets:read" } });

        using var viewer = broker.OperatorClient("viewer@example.com");
        Assert.That((await viewer.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("active"));
        var denied = await Refused.CallAsync(() => viewer.RevokeLeaseAsync(begun.LeaseId, "viewer tries"));
        Assert.That((denied.StatusCode, denied.Detail), Is.EqualTo((StatusCode.PermissionDenied, "RevokeLease needs the operator role 'revoker'; 'viewer@example.com' has: viewer.")));

        using var oncall = new CredBrokerOperatorClient(broker.OperatorAddress, () => broker.WorkloadToken("bob@example.com",
            audience: ProductionBroker.OperatorAudience, claims: new Dictionary<string, object> { ["groups"] = new[] { "staff", "sec-oncall" } }));
        Assert.That((await oncall.RevokeLeaseAsync(begun.LeaseId, "on-call revokes")).Changed, Is.True);
        Assert.That((await Refused.CallAsync(() => oncall.RotateSigningKeyAsync(string.Empty, "not an admin"))).StatusCode, Is.EqualTo(StatusCode.PermissionDenied));

        using var admin = broker.OperatorClient();
        Assert.That((await Refused.CallAsync(() => admin.RotateSigningKeyAsync(string.Empty, "admin, no spare key"))).StatusCode, Is.EqualTo(StatusCode.FailedPrecondition), "admins pass the role check");

        using var stranger = broker.OperatorClient("mallory@example.com");
        Assert.That((await Refused.CallAsync(() => stranger.ListLeasesAsync(new ListLeasesRequest()))).Detail, Does.Contain("is not an operator"));

        // An operator's credential, even one minted for the broker's agent audience, is refused on the agent listener.
        using var operatorAsAgent = broker.ClientWithCredential(broker.WorkloadToken(ProductionBroker.Operator));
        var refused = await Refused.CallAsync(() => operatorAsAgent.BeginTaskAsync(new BeginTaskRequest { TaskId = "op", Scopes = { "tickets:read" } }));
        Assert.That((refused.StatusCode, refused.Detail), Is.EqualTo((StatusCode.Unauthenticated, "An operator credential is not accepted on the agent listener; use the operator listener.")));
    }

    [Test]
    public async Task PolicyFileIdentities_MapWorkloadsToAgents_AfterTheConfiguredMappings()
    {
        using var redis = RedisServer.Start();
        var policy = ProductionBroker.AgentsYaml.Replace(
            "purpose: triage support tickets", "purpose: triage support tickets\n    identities: [system:serviceaccount:support:triage-v2]", StringComparison.Ordinal);
        await using var broker = new ProductionBroker(policy);
        await broker.StartAsync(redis.ConnectionString);

        using var mappedByPolicy = broker.ClientFor("system:serviceaccount:support:triage-v2");
        var begun = await mappedByPolicy.BeginTaskAsync(new BeginTaskRequest { TaskId = "policy-identity", Scopes = { "tickets:read" } });
        Assert.That(begun.GrantedScopes, Is.EqualTo(new[] { "tickets:read" }), "the policy's identities list made this workload triage-agent");

        using var unmapped = broker.ClientFor("system:serviceaccount:support:someone-else");
        var refused = await Refused.CallAsync(() => unmapped.BeginTaskAsync(new BeginTaskRequest { TaskId = "nobody", Scopes = { "tickets:read" } }));
        Assert.That((refused.StatusCode, refused.Detail), Is.EqualTo((StatusCode.PermissionDenied,
            "Workload 'system:serviceaccount:support:someone-else' is authenticated but maps to no agent; add it to an agent's identities.")));
    }

    private static string[] Tls(TestCertificates certificates) =>
    [
        $"--CredBroker:Listen:Tls:CertificateFile={certificates.ServerCertFile}",
        $"--CredBroker:Listen:Tls:KeyFile={certificates.ServerKeyFile}",
        $"--CredBroker:Listen:Tls:ClientCaFile={certificates.CaFile}",
        "--CredBroker:Listen:Tls:RequireClientCertificate=false",
    ];

    private static async Task AssertRefusedAsync(ProductionBroker broker, string credential, StatusCode status, string message)
    {
        using var client = broker.ClientWithCredential(credential);
        var error = await Refused.CallAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "refused-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));
        Assert.That(error.StatusCode, Is.EqualTo(status), error.Detail);
        Assert.That(error.Detail, Does.Contain(message));
    }

    /// <summary>A fake OIDC issuer's JWKS endpoint on loopback whose document the test can change (key rotation).</summary>
    private sealed class JwksServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _requests;

        private JwksServer(WebApplication app, string document, int port)
        {
            _app = app;
            Document = document;
            Uri = new Uri($"http://127.0.0.1:{port}/jwks");
        }

        public string Document { get; set; }

        public Uri Uri { get; }

        public int Requests => _requests;

        public static async Task<JwksServer> StartAsync(string document)
        {
            var port = RedisServer.FreePort();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
            var app = builder.Build();
            var server = new JwksServer(app, document, port);
            app.MapGet("/jwks", () =>
            {
                Interlocked.Increment(ref server._requests);
                return Results.Text(server.Document, "application/json");
            });
            await app.StartAsync();
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
