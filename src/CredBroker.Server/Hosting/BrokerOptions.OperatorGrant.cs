namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class OperatorGrant
    {
        /// <summary>The operator issuer (exact iss) whose Subject or Group this grant trusts; may be left out only with one operator issuer.</summary>
        public string? Issuer { get; set; }

        public string? Subject { get; set; }

        public string? Group { get; set; }

        /// <summary>The SPIFFE id (URI SAN) of an operator's client certificate, chained to Listen:Tls:ClientCaFile.</summary>
        public string? Certificate { get; set; }

        /// <summary>viewer, revoker (revoke, quarantine, release), approver (decide approvals), admin (everything, incl. keys and policy).</summary>
        public List<string> Roles { get; set; } = [];
    }
}
