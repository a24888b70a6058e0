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

    /// <summary>A trusted user-token issuer (delegation on behalf of users); its delegated scopes are in <c>scope</c>.</summary>
    public const string UserIssuer = "https://users.test";

    /// <summary>A second user-token issuer (same key) whose delegated scopes are in an <c>scp</c> array.</summary>
    public const string ScpUserIssuer = "https://users-scp.test";

    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-test-").FullName;
    private readonly ECDsa _issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly string _issuerKid = "test-issuer-key";
    private readonly ECDsa _userIssuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly string _userIssuerKid = "test-user-issuer-key";
    private WebApplication? _app;

    public int HttpPort { get; private set; } = RedisServer.FreePort();

    public int AgentPort { get; private set; } = RedisServer.FreePort();

    public int OperatorPort { get; private set; } = RedisServer.FreePort();

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
        // A free port can be taken by another process between picking and binding (the machine is
        // shared): then start again on fresh ports.
        for (var attempt = 1; ; attempt++)
        {
            _app = BrokerApp.Create(Arguments(redisConfiguration, HttpPort, AgentPort, OperatorPort, extraArguments), TextWriter.Null);
            try
            {
                await _app.StartAsync();
                return;
            }
            catch (IOException e) when (attempt < 5 && e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                await _app.DisposeAsync();
                (HttpPort, AgentPort, OperatorPort) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
            }
            catch
            {
                // A broker that refused to start is not stopped again on dispose.
                await _app.DisposeAsync();
                _app = null;
                throw;
            }
        }
    }

    /// <summary>
    /// Another replica of this broker as a real child process (same keys, agents and issuers, own
    /// ports), for fault tests that kill a broker with SIGKILL.
    /// </summary>
    public Task<BrokerProcess> StartReplicaProcessAsync(string redisConfiguration, params string[] extraArguments) =>
        StartReplicaProcessAsync(redisConfiguration, null, extraArguments);

    /// <summary>A replica process with more environment variables (e.g. <see cref="BrokerProcess.SkewedClock"/>).</summary>
    public async Task<BrokerProcess> StartReplicaProcessAsync(string redisConfiguration, IReadOnlyDictionary<string, string>? environment, params string[] extraArguments)
    {
        await WriteFilesAsync();
        var (http, agent, op) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
        return await BrokerProcess.StartAsync(Arguments(redisConfiguration, http, agent, op, extraArguments), http, agent, environment, op);
    }

    /// <summary>A replica process that is started but not waited for (its /readyz may stay 503).</summary>
    public async Task<BrokerProcess> LaunchReplicaProcessAsync(string redisConfiguration, params string[] extraArguments) =>
        await LaunchReplicaProcessAsync(redisConfiguration, extraArguments, null);

    /// <summary>A replica process with more environment variables that is started but not waited for.</summary>
    public async Task<BrokerProcess> LaunchReplicaProcessAsync(string redisConfiguration, string[] extraArguments, IReadOnlyDictionary<string, string>? environment)
    {
        await WriteFilesAsync();
        var (http, agent, op) = (RedisServer.FreePort(), RedisServer.FreePort(), RedisServer.FreePort());
        return BrokerProcess.Launch(Arguments(redisConfiguration, http, agent, op, extraArguments), http, agent, environment, op);
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

        Directory.CreateDirectory(KeyDirectory);
        await File.WriteAllTextAsync(AgentsFile, agentsYaml ?? AgentsYaml);
        await File.WriteAllTextAsync(JwksFile, Jwks((_issuerKey, _issuerKid)));
        await File.WriteAllTextAsync(UserJwksFile, Jwks((_userIssuerKey, _userIssuerKid)));
    }

    /// <summary>A JWKS document with the public halves of <paramref name="keys"/> (for fake issuers).</summary>
    public static string Jwks(params (ECDsa Key, string Kid)[] keys) =>
        "{\"keys\":[" + string.Join(',', keys.Select(k =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(k.Key) { KeyId = k.Kid });
            return $"{{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"{k.Kid}\",\"x\":\"{jwk.X}\",\"y\":\"{jwk.Y}\",\"alg\":\"ES256\",\"use\":\"sig\"}}";
        })) + "]}";

    private string KeyFile => Path.Combine(_dir, "signing.pem");

    /// <summary>Signing:KeyDirectory, empty at start (a mounted Secret the broker rescans).</summary>
    public string KeyDirectory => Path.Combine(_dir, "keys");

    /// <summary>Puts a new signing key file into <see cref="KeyDirectory"/>, as an operator adding a key to the Secret; returns its kid.</summary>
    public async Task<string> AddSigningKeyAsync()
    {
        Directory.CreateDirectory(KeyDirectory);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var path = Path.Combine(KeyDirectory, $"key-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(path + ".tmp", key.ExportPkcs8PrivateKeyPem());
        File.Move(path + ".tmp", path);
        using var loaded = Core.Tokens.SigningKey.FromPemFile(path);
        return loaded.Kid;
    }

    private string AgentsFile => Path.Combine(_dir, "agents.yaml");

    /// <summary>The policy file the broker reads (and watches); tests rewrite it to exercise hot reload.</summary>
    public string PolicyFile => AgentsFile;

    private string JwksFile => Path.Combine(_dir, "workload-jwks.json");

    private string UserJwksFile => Path.Combine(_dir, "user-jwks.json");

    private string[] Arguments(string redisConfiguration, int httpPort, int agentPort, int operatorPort, string[] extraArguments) =>
    [
        // Every replica names the same issuer, as replicas behind one address do.
        $"--CredBroker:Issuer=http://127.0.0.1:{HttpPort}",
        $"--CredBroker:Redis:Configuration={redisConfiguration}",
        $"--CredBroker:Signing:KeyFiles:0={KeyFile}",
        $"--CredBroker:Signing:KeyDirectory={KeyDirectory}",
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
        $"--CredBroker:Delegation:Issuers:0:Issuer={UserIssuer}",
        $"--CredBroker:Delegation:Issuers:0:Audience={BrokerAudience}",
        $"--CredBroker:Delegation:Issuers:0:JwksFile={UserJwksFile}",
        $"--CredBroker:Delegation:Issuers:1:Issuer={ScpUserIssuer}",
        $"--CredBroker:Delegation:Issuers:1:Audience={BrokerAudience}",
        $"--CredBroker:Delegation:Issuers:1:JwksFile={UserJwksFile}",
        "--CredBroker:Delegation:Issuers:1:ScopeClaim=scp",
        .. extraArguments,
    ];

    /// <summary>A workload credential (like a projected service-account token) signed by the trusted issuer.</summary>
    public string WorkloadToken(
        string subject, TimeSpan? lifetime = null, string audience = BrokerAudience, string issuer = Issuer, ECDsa? key = null,
        IDictionary<string, object>? claims = null, DateTime? issuedAt = null, string? kid = null)
    {
        var now = issuedAt ?? DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(10));
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            Issuer = issuer,
            Audience = audience,
            Subject = new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim("sub", subject)]),
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = expires < now ? expires.AddMinutes(-1) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key ?? _issuerKey) { KeyId = kid ?? _issuerKid }, SecurityAlgorithms.EcdsaSha256),
        });
    }

    /// <summary>
    /// A user's token from a trusted user-token issuer, delegating <paramref name="scopes"/> to the broker
    /// (as <c>scope</c>, or as an <c>scp</c> array for <see cref="ScpUserIssuer"/>).
    /// </summary>
    public string UserToken(string user, IReadOnlyList<string> scopes, TimeSpan? lifetime = null, string audience = BrokerAudience, string issuer = UserIssuer, ECDsa? key = null)
    {
        var now = DateTime.UtcNow;
        var expires = now + (lifetime ?? TimeSpan.FromMinutes(10));
        var claims = new Dictionary<string, object> { ["sub"] = user };
        if (issuer == ScpUserIssuer)
        {
            claims["scp"] = scopes.ToArray();
        }
        else
        {
            claims["scope"] = string.Join(' ', scopes);
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = expires < now ? expires.AddMinutes(-1) : now,
            NotBefore = expires < now ? expires.AddMinutes(-1) : now,
            Expires = expires,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key ?? _userIssuerKey) { KeyId = _userIssuerKid }, SecurityAlgorithms.EcdsaSha256),
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
        _userIssuerKey.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
