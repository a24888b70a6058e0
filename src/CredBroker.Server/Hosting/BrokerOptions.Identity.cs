namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
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
}
