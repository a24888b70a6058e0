using System.Net;
using Microsoft.Extensions.Configuration;

namespace CredBroker.Server.Hosting;

/// <summary>The `CredBroker` configuration section (appsettings, env CredBroker__X__Y, or --CredBroker:X:Y=...).</summary>
public sealed partial class BrokerOptions
{
    public bool Dev { get; set; }

    /// <summary>
    /// Dev mode binds loopback only; <c>CredBroker:DevAllowNonLoopback=true</c> forces another address
    /// (with a loud warning): dev credentials are printed and the store is in memory.
    /// </summary>
    public bool DevAllowNonLoopback { get; set; }

    /// <summary>The `iss` of minted tokens and the OpenID configuration.</summary>
    public string Issuer { get; set; } = "http://127.0.0.1:5400";

    public string? AgentsFile { get; set; }

    public SigningOptions Signing { get; set; } = new();

    public RedisOptions Redis { get; set; } = new();

    public ListenOptions Listen { get; set; } = new();

    public IdentityOptions Identity { get; set; } = new();

    public OperatorOptions Operators { get; set; } = new();

    public LeaseOptions Leases { get; set; } = new();

    public AuditOptions Audit { get; set; } = new();

    public TelemetryOptions Telemetry { get; set; } = new();

    public DelegationSettings Delegation { get; set; } = new();

    public ClockOptions Clock { get; set; } = new();

    public HealthOptions Health { get; set; } = new();

    public static BrokerOptions Bind(IConfiguration configuration, bool dev)
    {
        var options = new BrokerOptions();
        configuration.GetSection("CredBroker").Bind(options);
        options.Dev |= dev;
        return options;
    }

    /// <summary>Delegation settings that cannot work (checked in dev mode too).</summary>
    public IEnumerable<string> DelegationProblems()
    {
        if (Delegation.MaxDepth is < 0 or > Core.Delegation.DelegationOptions.MaxAllowedDepth)
        {
            yield return $"CredBroker:Delegation:MaxDepth must be between 0 and {Core.Delegation.DelegationOptions.MaxAllowedDepth}.";
        }

        for (var i = 0; i < Delegation.Issuers.Count; i++)
        {
            var issuer = Delegation.Issuers[i];
            var key = $"CredBroker:Delegation:Issuers:{i}";
            if (string.IsNullOrWhiteSpace(issuer.Issuer) || string.IsNullOrWhiteSpace(issuer.Audience) || string.IsNullOrWhiteSpace(issuer.JwksFile))
            {
                yield return $"{key} needs Issuer, Audience (this broker) and JwksFile.";
            }

            if (string.Equals(issuer.Issuer, Issuer, StringComparison.Ordinal))
            {
                yield return $"{key}:Issuer is this broker's own issuer; the broker's tokens are delegated as parent tokens, not as user tokens.";
            }

            if (issuer.Algorithms.Any(a => !Auth.JwtIssuerTrust.AsymmetricAlgorithms.Contains(a)))
            {
                yield return $"{key}:Algorithms must list only asymmetric algorithms ({string.Join(", ", Auth.JwtIssuerTrust.AsymmetricAlgorithms)}).";
            }

            if (issuer.ScopeClaim is not ("scope" or "scp") || string.IsNullOrWhiteSpace(issuer.SubjectClaim))
            {
                yield return $"{key}:ScopeClaim must be 'scope' or 'scp', and SubjectClaim must be set.";
            }

            if (issuer.ClockSkew < TimeSpan.Zero || issuer.ClockSkew > TimeSpan.FromMinutes(5))
            {
                yield return $"{key}:ClockSkew must be between 0 and 5 minutes.";
            }
        }
    }

    /// <summary>What production mode refuses to start without; empty when the options are complete.</summary>
    public IReadOnlyList<string> ProductionProblems()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Redis.Configuration))
        {
            problems.Add("CredBroker:Redis:Configuration is not set (production never falls back to an in-memory store).");
        }

        problems.AddRange(Redis.Problems());
        problems.AddRange(Clock.Problems());
        problems.AddRange(Health.Problems());

        if (Signing.KeyFiles.Count == 0 && string.IsNullOrEmpty(Signing.KeyDirectory))
        {
            problems.Add("Neither CredBroker:Signing:KeyFiles (PEM EC P-256 private key files) nor CredBroker:Signing:KeyDirectory is set: no signing key.");
        }

        if (Identity.Certificates.Count > 0 && Listen.Tls?.ClientCaFile is not { Length: > 0 })
        {
            problems.Add("CredBroker:Identity:Certificates maps client certificates, but Listen:Tls:ClientCaFile is not set: no client certificate could be verified.");
        }

        if (Signing.PublishLead < TimeSpan.Zero || Signing.ClockSkew < TimeSpan.Zero || Signing.RotateEvery <= Signing.PublishLead
            || Signing.ScheduleRefreshInterval <= TimeSpan.Zero || Signing.ScheduleRefreshInterval >= Signing.PublishLead && Signing.PublishLead > TimeSpan.Zero)
        {
            problems.Add("CredBroker:Signing: PublishLead and ClockSkew must be ≥ 0, RotateEvery longer than PublishLead, and ScheduleRefreshInterval > 0 and shorter than PublishLead (every replica must read a rotation before it takes effect).");
        }

        if (string.IsNullOrWhiteSpace(AgentsFile))
        {
            problems.Add("CredBroker:AgentsFile is not set (no agent definition, no token).");
        }

        if (!IPAddress.TryParse(Listen.Address, out var address))
        {
            problems.Add($"CredBroker:Listen:Address '{Listen.Address}' is not an IP address.");
        }
        else if (Listen.Tls is null && !Listen.AllowPlaintext && !IPAddress.IsLoopback(address))
        {
            problems.Add($"CredBroker:Listen:Tls is not set but the gRPC listeners bind {Listen.Address}: set Tls:CertificateFile and Tls:KeyFile, or Listen:AllowPlaintext=true when a sidecar terminates TLS.");
        }

        if (Leases.RevocationRetention < TimeSpan.FromSeconds(1) || Leases.RevocationRetention > TimeSpan.FromDays(30))
        {
            problems.Add("CredBroker:Leases:RevocationRetention must be between 00:00:01 and 30.00:00:00 (at least the longest max_token_ttl plus 60 s clock skew).");
        }

        if (Listen.Grpc.MaxReceiveMessageSize is < 1024 or > 16 * 1024 * 1024)
        {
            problems.Add("CredBroker:Listen:Grpc:MaxReceiveMessageSize must be between 1 KiB and 16 MiB.");
        }

        if (Listen.Grpc.MaxStreamsPerIdentity is < 1 or > 100_000 || Listen.Grpc.MaxConnectionsPerAddress is < 1 or > 1_000_000)
        {
            problems.Add("CredBroker:Listen:Grpc: MaxStreamsPerIdentity must be 1..100000 and MaxConnectionsPerAddress 1..1000000.");
        }

        problems.AddRange(DelegationProblems());
        problems.AddRange(Ssf.Problems());
        if (Audit.CheckpointInterval is < 1 or > 1_000_000 || Audit.MaxRecords < 0 || Audit.MaxAge <= TimeSpan.Zero || Audit.MaxBatch is < 1 or > 4096)
        {
            problems.Add("CredBroker:Audit: CheckpointInterval must be 1..1000000, MaxRecords >= 0, MaxAge positive and MaxBatch 1..4096.");
        }

        if (Audit.RefusalWindow < TimeSpan.FromMilliseconds(100) || Audit.RefusalWindow > TimeSpan.FromHours(1))
        {
            problems.Add("CredBroker:Audit:RefusalWindow must be between 100 ms and 1 hour.");
        }

        if (Identity.Issuers.Count == 0 && Identity.Certificates.Count == 0)
        {
            problems.Add("CredBroker:Identity:Issuers lists no trusted workload-credential issuer (and Identity:Certificates maps no SPIFFE id), so no agent could authenticate.");
        }

        return problems;
    }
}
