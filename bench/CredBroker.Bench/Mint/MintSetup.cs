using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Bench.Mint;

/// <summary>
/// Everything a production-mode broker needs for the mint benchmark, generated into a throwaway
/// directory at run time (no key or credential lives in the repository): the broker's signing key,
/// an agent file, a workload issuer's JWKS, one workload credential for the agent (like a projected
/// service-account token, reused for every call as a runtime would), the broker's command line,
/// and a pre-encoded BeginTask body for h2load.
/// </summary>
internal static class MintSetup
{
    public const string Subject = "system:serviceaccount:bench:agent";
    public const string AgentId = "bench-agent";
    public const string Audience = "tickets-api";
    public const string Scope = "tickets:read";
    private const string WorkloadIssuer = "https://workloads.bench";
    private const string BrokerAudience = "credbroker";

    public static void Write(string dir, string redis, int httpPort, int agentPort, int operatorPort, TextWriter log)
    {
        Directory.CreateDirectory(dir);
        using (var signing = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            WritePrivate(Path.Combine(dir, "signing.pem"), signing.ExportPkcs8PrivateKeyPem());
        }

        // The quotas are lifted so the benchmark measures the mint path, not the rate limiter.
        File.WriteAllText(Path.Combine(dir, "agents.yaml"), $"""
            agents:
              - id: {AgentId}
                owner: bench@example.com
                purpose: benchmark the mint path
                audiences: [{Audience}]
                allowed_scopes: [{Scope}, tickets:comment]
                max_token_ttl: 5m
                default_lease_ttl: 10m
                max_lease_lifetime: 30m
                max_concurrent_leases: 100000
                max_tasks_per_minute: 1000000
            """);

        using var issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var kid = "bench-issuer";
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(issuerKey) { KeyId = kid });
        File.WriteAllText(Path.Combine(dir, "workload-jwks.json"),
            $"{{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"{kid}\",\"x\":\"{jwk.X}\",\"y\":\"{jwk.Y}\",\"alg\":\"ES256\",\"use\":\"sig\"}}]}}");
        var now = DateTime.UtcNow;
        var credential = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = WorkloadIssuer,
            Audience = BrokerAudience,
            Claims = new Dictionary<string, object> { ["sub"] = Subject },
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddHours(1),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(issuerKey) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256),
        });
        WritePrivate(Path.Combine(dir, "credential.jwt"), credential);

        string[] arguments =
        [
            $"--CredBroker:Issuer=http://127.0.0.1:{httpPort}",
            $"--CredBroker:Redis:Configuration={redis}",
            $"--CredBroker:Signing:KeyFiles:0={Path.Combine(dir, "signing.pem")}",
            $"--CredBroker:AgentsFile={Path.Combine(dir, "agents.yaml")}",
            $"--CredBroker:Listen:HttpPort={httpPort}",
            $"--CredBroker:Listen:AgentPort={agentPort}",
            $"--CredBroker:Listen:OperatorPort={operatorPort}",
            $"--CredBroker:Identity:Issuers:0:Issuer={WorkloadIssuer}",
            $"--CredBroker:Identity:Issuers:0:Audience={BrokerAudience}",
            $"--CredBroker:Identity:Issuers:0:JwksFile={Path.Combine(dir, "workload-jwks.json")}",
            $"--CredBroker:Identity:Issuers:0:Workloads:0:Subject={Subject}",
            $"--CredBroker:Identity:Issuers:0:Workloads:0:Agent={AgentId}",
            $"--CredBroker:Operators:Issuers:0:Issuer={WorkloadIssuer}",
            "--CredBroker:Operators:Issuers:0:Audience=credbroker-operators",
            $"--CredBroker:Operators:Issuers:0:JwksFile={Path.Combine(dir, "workload-jwks.json")}",
            "--CredBroker:Operators:Subjects:0=bench-operator@example.com",
        ];
        File.WriteAllLines(Path.Combine(dir, "broker.args"), arguments);

        // One fixed BeginTask for h2load: every request replays the same task (idempotent), so it
        // measures the load generators against each other, not the lease write.
        File.WriteAllBytes(Path.Combine(dir, "begin-fixed.bin"), MintCalls.Frame(MintCalls.BeginRequest("bench-fixed-task")));
        log.WriteLine($"wrote the broker's key, agent file, workload JWKS, credential and command line to {dir}");
    }

    private static void WritePrivate(string path, string text)
    {
        File.WriteAllText(path, string.Empty);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(path, text);
    }
}
