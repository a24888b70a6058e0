namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class OperatorOptions
    {
        /// <summary>Issuers of operator credentials (OIDC ID or access tokens); validated like workload issuers.</summary>
        public List<TrustedIssuerOptions> Issuers { get; set; } = [];

        /// <summary>Subjects that are operators with every role: <c>issuer|subject</c>, or a bare subject while one operator issuer is trusted.</summary>
        public List<string> Subjects { get; set; } = [];

        /// <summary>Role grants by subject, group (from <see cref="GroupClaim"/>) or client-certificate SPIFFE id. Nobody else is an operator, agents included.</summary>
        public List<OperatorGrant> Grants { get; set; } = [];

        /// <summary>The claim of operator credentials that lists the caller's groups (an array or a space-separated string).</summary>
        public string GroupClaim { get; set; } = "groups";
    }
}
