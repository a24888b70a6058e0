namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
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
}
