namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary>`CredBroker:Delegation`: on behalf of users (trusted user-token issuers) and sub-agent chains.</summary>
    public sealed class DelegationSettings
    {
        /// <summary>Issuers whose user tokens agents may present as <c>subject_token</c>; none = no delegation on behalf of users.</summary>
        public List<UserTokenIssuerOptions> Issuers { get; set; } = [];

        /// <summary>The deepest sub-agent chain (parent leases above a lease); 0 disables sub-agent delegation.</summary>
        public int MaxDepth { get; set; } = Core.Delegation.DelegationOptions.DefaultMaxDepth;

        public Core.Delegation.DelegationOptions CoreOptions() => new() { MaxDepth = MaxDepth };
    }
}
