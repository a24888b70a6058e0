using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using CredBroker.Client;
using CredBroker.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Testing;

/// <summary>
/// The broker in production mode, in process: Redis store, a PEM signing key, an agent file and a
/// trusted workload issuer whose key the test holds, so it can mint real workload credentials.
/// </summary>
/// <param name="agentsYaml">The agent file; <see cref="AgentsYaml"/> by default.</param>
public sealed class ProductionBroker(string? agentsYaml = null) : IAsyncDisposable
{
    public const string Issuer = "https://workloads.test";
    public const string BrokerAudience = "credbroker";
    public const string OperatorAudience = "credbroker-operators";
    public const string Operator = "alice@example.com";

    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-test-").FullName;
    private readonly ECDsa _issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly string _issuerKid = "test-issuer-key";
    private WebApplication? _app;

    public int HttpPort { get; } = RedisServer.FreePort();

    public int AgentPort { get; } = RedisServer.FreePort();

    public int OperatorPort { get; } = RedisServer.FreePort();

    public Uri AgentAddress => new($"http://127.0.0.1:{AgentPort}");

    public Uri HttpAddress => new($"http://127.0.0.1:{HttpPort}");

    public static string AgentsYaml => """
        agents:
          - id: triage-agent
            owner: support-team@example.com
            purpose: triage support tickets
            audiences: [tickets-api, kb-api]
            allowed_scopes: [tickets:read, tickets:comment, kb:read]
            disallowed_scopes: [tickets:delete]
            approval_scopes: [tickets:export]
            max_token_ttl: 5m
            default_lease_ttl: 10m
            max_lease_lifetime: 30m
          - id: billing-agent
            owner: finance@example.com
            purpose: reconcile invoices
            audiences: [billing-api]
            allowed_scopes: [invoices:read]
            max_concurrent_leases: 2
            max_tasks_per_minute: 3
        """;

    public async Task StartAsync(string redisConfiguration, params string[] extraArguments)
    {
        await WriteFilesAsync();
        _app = BrokerApp.Create(Arguments(redisConfiguration, HttpPort, AgentPort, OperatorPort, extraArguments), TextWriter.Null);
        await _app.StartAsync();
    }

    /// <summary>
    /// Another replica of this broker as a real child process (same keys, agents and issuers, own
    /// ports), for fault tests that kill a broker with SIGKILL.
    /// </summary>
    public async Task<BrokerProcess> StartReplicaProcessAsync(string redisConfiguration)
    {
        await WriteFilesAsync();
        var (http, agent, op) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
        return await BrokerProcess.StartAsync(Arguments(redisConfiguration, http, agent, op, []), http, agent);
    }

    private async Task WriteFilesAsync()
    {
        if (File.Exists(KeyFile))
        {
            return;
        }

        using (var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            await File.WriteAllTextAsync(KeyFile, signing.ExportPkcs8PrivateKeyPem());
        }

        await File.WriteAllTextAsync(AgentsFile, agentsYaml ?? AgentsYaml);
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(_issuerKey) { KeyId = _issuerKid });
        await File.WriteAllTextAsync(JwksFile,
            $"{{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"{_issuerKid}\",\"x\":\"{jwk.X}\",\"y\":\"{jwk.Y}\",\"alg\":\"ES256\",\"use\":\"sig\"}}]}}");
    }

    private string KeyFile => Path.Combine(_dir, "signing.pem");

    private string AgentsFile => Path.Combine(_dir, "agents.yaml");

    /// <summary>The policy file the broker reads (and watches); tests rewrite it to exercise hot reload.</summary>
    public string PolicyFile => AgentsFile;

    private string JwksFile => Path.Combine(_dir, "workload-jwks.json");

    private string[] Arguments(string redisConfiguration, int httpPort, int agentPort, int operatorPort, string[] extraArguments) =>
    [
        // Every replica names the same issuer, as replicas behind one address do.
        $"--CredBroker:Issuer=http://127.0.0.1:{HttpPort}",
        $"--CredBroker:Redis:Configuration={redisConfiguration}",
        $"--CredBroker:Signing:KeyFiles:0={KeyFile}",
        $"--CredBroker:AgentsFile={AgentsFile}",
        $"--CredBroker:Listen:HttpPort={httpPort}",
        $"--CredBroker:Listen:AgentPort={agentPort}",
        $"--CredBroker:Listen:OperatorPort={operatorPort}",
        $"--CredBroker:Identity:Issuers:0:Issuer={Issuer}",
        $"--CredBroker:Identity:Issuers:0:Audience={BrokerAudience}",
        $"--CredBroker:Identity:Issuers:0:JwksFile={JwksFile}",
        "--CredBroker:Identity:Issuers:0:Workloads:0:Subject=system:serviceaccount:support:triage",
        "--CredBroker:Identity:Issuers:0:Workloads:0:Agent=triage-agent",
        "--CredBroker:Identity:Issuers:0:Workloads:1:Subject=system:serviceaccount:finance:billing",
        "--CredBroker:Identity:Issuers:0:Workloads:1:Agent=billing-agent",
        "--CredBroker:Identity:Issuers:0:Workloads:2:Subject=system:serviceaccount:apis:tickets",
        "--CredBroker:Identity:Issuers:0:Workloads:2:Agent=",
        $"--CredBroker:Operators:Issuers:0:Issuer={Issuer}",
        $"--CredBroker:Operators:Issuers:0:Audience={OperatorAudience}",
        $"--CredBroker:Operators:Issuers:0:JwksFile={JwksFile}",
        $"--CredBroker:Operators:Subjects:0={Operator}",
        "--CredBroker:Leases:SweepInterval=00:00:00.100",
        .. extraArguments,
    ];

    /// <summary>A workload credential (like a projected service-account token) signed by the trusted issuer.</summary>
    public string WorkloadToken(string subject, TimeSpan? lifetime = null, string audience = BrokerAudience, string issuer = Issuer, ECDsa? key = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(10));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Subject = new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim("sub", subject)]),
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = expires < now ? expires.AddMinutes(-1) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key ?? _issuerKey) { KeyId = _issuerKid }, SecurityAlgorithms.EcdsaSha256),
        });
    }

    public CredBrokerClient ClientFor(string subject) => new(AgentAddress, () => WorkloadToken(subject));

    public CredBrokerClient ClientWithCredential(string credential) => new(AgentAddress, () => credential);

    public Uri OperatorAddress => new($"http://127.0.0.1:{OperatorPort}");

    /// <summary>An operator client with an OIDC-style credential for <paramref name="subject"/> (default: the configured operator).</summary>
    public CredBrokerOperatorClient OperatorClient(string subject = Operator, string audience = OperatorAudience) =>
        new(OperatorAddress, () => WorkloadToken(subject, audience: audience));

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _issuerKey.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
