namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
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
}
