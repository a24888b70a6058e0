using System.Net;
using Microsoft.Extensions.Configuration;

namespace CredBroker.Server.Hosting;

/// <summary>The `CredBroker` configuration section (appsettings, env CredBroker__X__Y, or --CredBroker:X:Y=...).</summary>
public sealed class BrokerOptions
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

    public sealed class TelemetryOptions
    {
        /// <summary>
        /// OTLP endpoint (e.g. http://otel-collector:4317) for traces and metrics; unset = the standard
        /// OTEL_EXPORTER_OTLP_ENDPOINT environment variable, and when neither is set nothing is exported
        /// over OTLP (Prometheus text at /metrics is always served).
        /// </summary>
        public string? OtlpEndpoint { get; set; }

        /// <summary>The service.name resource attribute.</summary>
        public string ServiceName { get; set; } = "credbroker";
    }

    public sealed class AuditOptions
    {
        /// <summary>Redis for the audit chain; unset = the lease store's Redis (CredBroker:Redis:Configuration).</summary>
        public string? RedisConfiguration { get; set; }

        /// <summary>
        /// A file holding the checkpoint HMAC key (at least 32 bytes, base64 or raw); unset = checkpoints are
        /// ES256-signed with the first token signing key (verifiable with the JWKS while that key is published).
        /// </summary>
        public string? CheckpointKeyFile { get; set; }

        /// <summary>A signed checkpoint every this many records.</summary>
        public int CheckpointInterval { get; set; } = 100;

        /// <summary>Records kept at most (0 = no count limit).</summary>
        public long MaxRecords { get; set; }

        /// <summary>Records older than this are dropped and the chain re-anchored (null = kept until MaxRecords).</summary>
        public TimeSpan? MaxAge { get; set; } = TimeSpan.FromDays(400);

        /// <summary>Also append every record as one JSON line to this file (for a SIEM shipper); unset = no file.</summary>
        public string? JsonLinesFile { get; set; }

        /// <summary>How often QueryAudit followers look for records appended by other replicas.</summary>
        public TimeSpan FollowPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

        public Core.Audit.AuditLogOptions LogOptions() => new() { CheckpointInterval = CheckpointInterval, MaxRecords = MaxRecords, MaxAge = MaxAge };
    }

    public DelegationSettings Delegation { get; set; } = new();

    /// <summary>`CredBroker:Delegation`: on behalf of users (trusted user-token issuers) and sub-agent chains.</summary>
    public sealed class DelegationSettings
    {
        /// <summary>Issuers whose user tokens agents may present as <c>subject_token</c>; none = no delegation on behalf of users.</summary>
        public List<UserTokenIssuerOptions> Issuers { get; set; } = [];

        /// <summary>The deepest sub-agent chain (parent leases above a lease); 0 disables sub-agent delegation.</summary>
        public int MaxDepth { get; set; } = Core.Delegation.DelegationOptions.DefaultMaxDepth;

        public Core.Delegation.DelegationOptions CoreOptions() => new() { MaxDepth = MaxDepth };
    }

    public sealed class UserTokenIssuerOptions
    {
        /// <summary>The exact <c>iss</c> of the user tokens.</summary>
        public string Issuer { get; set; } = string.Empty;

        /// <summary>The audience user tokens must name: this broker (users delegate to the broker, not to an API).</summary>
        public string Audience { get; set; } = string.Empty;

        /// <summary>A JWKS file with the issuer's public keys.</summary>
        public string JwksFile { get; set; } = string.Empty;

        /// <summary>Accepted JWS algorithms (asymmetric only); empty = ES256, RS256, PS256. (A list default would be appended to by configuration binding.)</summary>
        public List<string> Algorithms { get; set; } = [];

        public IReadOnlyList<string> EffectiveAlgorithms => Algorithms.Count > 0 ? Algorithms : ["ES256", "RS256", "PS256"];

        /// <summary>The claim naming the user (default <c>sub</c>).</summary>
        public string SubjectClaim { get; set; } = "sub";

        /// <summary>The claim listing the delegated scopes: <c>scope</c> (space-separated) or <c>scp</c> (array or space-separated).</summary>
        public string ScopeClaim { get; set; } = "scope";

        /// <summary>Tolerated clock difference for <c>exp</c>/<c>nbf</c> (at most 5 minutes).</summary>
        public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);
    }

    public sealed class OperatorOptions
    {
        /// <summary>Issuers of operator credentials (OIDC ID or access tokens); validated like workload issuers.</summary>
        public List<TrustedIssuerOptions> Issuers { get; set; } = [];

        /// <summary>Subjects (from each issuer's SubjectClaim) that are operators with every role.</summary>
        public List<string> Subjects { get; set; } = [];

        /// <summary>Role grants by subject, group (from <see cref="GroupClaim"/>) or client-certificate SPIFFE id. Nobody else is an operator, agents included.</summary>
        public List<OperatorGrant> Grants { get; set; } = [];

        /// <summary>The claim of operator credentials that lists the caller's groups (an array or a space-separated string).</summary>
        public string GroupClaim { get; set; } = "groups";
    }

    public sealed class OperatorGrant
    {
        public string? Subject { get; set; }

        public string? Group { get; set; }

        /// <summary>The SPIFFE id (URI SAN) of an operator's client certificate, chained to Listen:Tls:ClientCaFile.</summary>
        public string? Certificate { get; set; }

        /// <summary>viewer, revoker (revoke, quarantine, release), approver (decide approvals), admin (everything, incl. keys and policy).</summary>
        public List<string> Roles { get; set; } = [];
    }

    public sealed class LeaseOptions
    {
        /// <summary>How often this replica sweeps expired leases (every replica sweeps; claims are atomic).</summary>
        public TimeSpan SweepInterval { get; set; } = Core.Leases.LeaseSweeper.DefaultInterval;

        /// <summary>How often WatchRevocations checks the log for events appended by other replicas (this replica's own wake watchers at once).</summary>
        public TimeSpan RevocationPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

        /// <summary>
        /// How long revocation events are kept (by time, not count): at least the longest token lifetime
        /// (agents' max_token_ttl) plus validators' clock skew; a validator whose cursor is older must resync.
        /// </summary>
        public TimeSpan RevocationRetention { get; set; } = Core.Leases.LeaseStoreOptions.DefaultRevocationRetention;

        public Core.Leases.LeaseStoreOptions StoreOptions() => new() { RevocationRetention = RevocationRetention };
    }

    public sealed class SigningOptions
    {
        /// <summary>PEM EC P-256 private key files. The first signs until the first rotation.</summary>
        public List<string> KeyFiles { get; set; } = [];

        /// <summary>A directory (a mounted Secret) whose <c>*.pem</c> keys are loaded and rescanned, so a new key needs no restart.</summary>
        public string? KeyDirectory { get; set; }

        /// <summary>How long a new key is published before it signs; keep it above validators' JWKS cache lifetime.</summary>
        public TimeSpan PublishLead { get; set; } = new Core.Tokens.KeyRotationOptions().PublishLead;

        /// <summary>Added to the longest token TTL to decide how long a retired key stays published.</summary>
        public TimeSpan ClockSkew { get; set; } = new Core.Tokens.KeyRotationOptions().ClockSkew;

        /// <summary>Rotate automatically when the signing key has signed this long (needs a spare key mounted); unset = only on request.</summary>
        public TimeSpan? RotateEvery { get; set; }

        /// <summary>How often each replica rescans key files and rereads the shared schedule.</summary>
        public TimeSpan ScheduleRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

        public Core.Tokens.KeyRotationOptions RotationOptions() =>
            new() { PublishLead = PublishLead, ClockSkew = ClockSkew, RotateEvery = RotateEvery };
    }

    public sealed class RedisOptions
    {
        /// <summary>A StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379,password=...</c>.</summary>
        public string? Configuration { get; set; }

        /// <summary>A file holding the Redis password (a mounted Secret); overrides any password= in Configuration.</summary>
        public string? PasswordFile { get; set; }

        /// <summary>PEM CA certificate(s) Redis's TLS certificate must chain to (needs ssl=true in Configuration); unset = the system trust store.</summary>
        public string? CaFile { get; set; }

        /// <summary>The Redis ACL user the broker authenticates as (with the password from PasswordFile); unset = the default user.</summary>
        public string? User { get; set; }

        /// <summary>Connect and command timeout (sync and async) of every Redis call; past it the call fails UNAVAILABLE.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

        /// <summary>Replicas that must acknowledge a revocation, completion or quarantine (Redis WAIT); 0 = do not wait.</summary>
        public int WaitReplicas { get; set; }

        /// <summary>How long WAIT waits for WaitReplicas acknowledgements; shorter than Timeout.</summary>
        public TimeSpan WaitTimeout { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>Settings that cannot work, each naming its key.</summary>
        public IEnumerable<string> Problems()
        {
            var (min, max) = CredBroker.Redis.RedisConnectionOptions.TimeoutRange;
            if (Timeout < min || Timeout > max)
            {
                yield return $"CredBroker:Redis:Timeout must be between {min.TotalMilliseconds:0} ms and {max.TotalSeconds:0} s.";
            }

            if (WaitReplicas < 0)
            {
                yield return "CredBroker:Redis:WaitReplicas must be 0 (no WAIT) or more.";
            }
            else if (WaitReplicas > 0 && (WaitTimeout <= TimeSpan.Zero || WaitTimeout >= Timeout))
            {
                yield return "CredBroker:Redis:WaitTimeout must be above 0 and shorter than CredBroker:Redis:Timeout (else the client gives up before WAIT answers).";
            }
        }

        /// <summary>The replica acknowledgement the lease store waits for, or null.</summary>
        public CredBroker.Redis.RedisReplicaAcks? ReplicaAcks() => WaitReplicas > 0 ? new(WaitReplicas, WaitTimeout) : null;
    }

    public sealed class ListenOptions
    {
        public string Address { get; set; } = "127.0.0.1";

        public int HttpPort { get; set; } = 5400;

        public int AgentPort { get; set; } = 5401;

        public int OperatorPort { get; set; } = 5402;

        /// <summary>TLS for both gRPC listeners; without it they speak h2c, which production allows on loopback only.</summary>
        public TlsOptions? Tls { get; set; }

        /// <summary>Serve h2c on a non-loopback address (e.g. behind a mesh sidecar that terminates TLS).</summary>
        public bool AllowPlaintext { get; set; }

        public Http2Options Http2 { get; set; } = new();

        public GrpcOptions Grpc { get; set; } = new();

        public IPAddress ParsedAddress => IPAddress.Parse(Address);
    }

    public sealed class TlsOptions
    {
        public string CertificateFile { get; set; } = string.Empty;

        public string KeyFile { get; set; } = string.Empty;

        /// <summary>CA for client certificates (mTLS); unset = TLS without client certificates.</summary>
        public string? ClientCaFile { get; set; }

        /// <summary>With a client CA: refuse callers without a certificate (default) or let them use a bearer credential.</summary>
        public bool RequireClientCertificate { get; set; } = true;
    }

    public sealed class Http2Options
    {
        public int MaxStreamsPerConnection { get; set; } = 100;

        /// <summary>Idle time before the server pings a connection; null disables pings.</summary>
        public TimeSpan? KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>A connection whose ping is not answered within this is closed.</summary>
        public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);
    }

    public sealed class GrpcOptions
    {
        public int MaxReceiveMessageSize { get; set; } = 64 * 1024;

        public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

        /// <summary>Cap on a unary call's deadline, and the deadline when a client sends none.</summary>
        public TimeSpan MaxUnaryDeadline { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>
        /// Streaming calls keep the client's deadline up to this; a longer one (or none) means the
        /// stream runs until either side ends it.
        /// </summary>
        public TimeSpan MaxStreamingDeadline { get; set; } = TimeSpan.FromDays(7);

        public bool CompressResponses { get; set; }
    }

    public sealed class IdentityOptions
    {
        /// <summary>Trusted workload-credential issuers (Kubernetes service-account tokens, SPIFFE JWT-SVIDs, OIDC).</summary>
        public List<TrustedIssuerOptions> Issuers { get; set; } = [];

        /// <summary>mTLS: SPIFFE ids (the URI SAN of a client certificate chained to Listen:Tls:ClientCaFile) → agents; patterns allowed.</summary>
        public List<WorkloadMapping> Certificates { get; set; } = [];

        /// <summary>
        /// Credentials remembered after a full validation, until their expiry, so a reused credential is
        /// verified once rather than on every call; 0 validates every call in full.
        /// </summary>
        public int VerifiedCredentialCacheSize { get; set; } = 10_000;
    }

    public sealed class TrustedIssuerOptions
    {
        public string Issuer { get; set; } = string.Empty;

        /// <summary>The audience workload credentials must name (the broker).</summary>
        public string Audience { get; set; } = string.Empty;

        /// <summary>A JWKS file with the issuer's public keys (or use <see cref="JwksUri"/>).</summary>
        public string JwksFile { get; set; } = string.Empty;

        /// <summary>The issuer's JWKS URL (https; http on loopback only), cached and refreshed, and refetched on an unknown kid.</summary>
        public string? JwksUri { get; set; }

        public TimeSpan JwksRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

        /// <summary>Accepted signing algorithms (asymmetric only); empty = ES256, ES384, RS256, PS256.</summary>
        public List<string> Algorithms { get; set; } = [];

        /// <summary>A credential issued (iat) longer ago than this is refused even if unexpired: replays of old tokens; null = no limit.</summary>
        public TimeSpan? MaxCredentialAge { get; set; } = TimeSpan.FromHours(24);

        /// <summary>The claim that identifies the workload (default <c>sub</c>).</summary>
        public string SubjectClaim { get; set; } = "sub";

        /// <summary>
        /// Which workload subjects act as which agent (a list, since subjects contain ':' which configuration keys cannot).
        /// A Subject may hold {placeholders} for one segment, reused in Agent: <c>system:serviceaccount:agents:{name}</c> → <c>{name}</c>.
        /// </summary>
        public List<WorkloadMapping> Workloads { get; set; } = [];
    }

    public sealed class WorkloadMapping
    {
        /// <summary>The subject claim value, e.g. <c>system:serviceaccount:agents:triage</c> or <c>spiffe://example.org/ns/agents/sa/triage</c>.</summary>
        public string Subject { get; set; } = string.Empty;

        public string Agent { get; set; } = string.Empty;
    }

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

        problems.AddRange(DelegationProblems());
        if (Audit.CheckpointInterval is < 1 or > 1_000_000 || Audit.MaxRecords < 0 || Audit.MaxAge <= TimeSpan.Zero)
        {
            problems.Add("CredBroker:Audit: CheckpointInterval must be 1..1000000, MaxRecords >= 0 and MaxAge positive.");
        }

        if (Identity.Issuers.Count == 0 && Identity.Certificates.Count == 0)
        {
            problems.Add("CredBroker:Identity:Issuers lists no trusted workload-credential issuer (and Identity:Certificates maps no SPIFFE id), so no agent could authenticate.");
        }

        return problems;
    }
}
