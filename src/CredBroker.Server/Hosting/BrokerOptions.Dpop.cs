using System.Net;
using CredBroker.Validation;

namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary><c>CredBroker:Dpop</c>: DPoP proofs (RFC 9449) on BeginTask, IssueToken and RenewLease.</summary>
    public DpopOptions Dpop { get; set; } = new();

    /// <summary>DPoP settings that cannot work (checked in dev mode too).</summary>
    public IEnumerable<string> DpopProblems()
    {
        foreach (var problem in Dpop.ProofOptions().Problems())
        {
            yield return "CredBroker:Dpop: " + problem.Replace("MaxAge", "MaxProofAge", StringComparison.Ordinal).Replace("MaxFuture", "MaxProofFuture", StringComparison.Ordinal);
        }

        foreach (var uri in Dpop.AgentUris)
        {
            if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https") || parsed.Query.Length > 0 || parsed.Fragment.Length > 0)
            {
                yield return $"CredBroker:Dpop:AgentUris: '{uri}' is not an absolute http(s) URI without query (the agent listener as agents address it, e.g. https://broker.example:5401).";
            }
        }

        if (Dpop.ReplayCacheSize is < 1 or > 10_000_000)
        {
            yield return "CredBroker:Dpop:ReplayCacheSize must be between 1 and 10,000,000.";
        }
    }

    public sealed class DpopOptions
    {
        /// <summary>Accept DPoP proofs (default true). Off: a call with a <c>dpop</c> header is refused, never served unbound.</summary>
        public bool Enabled { get; set; } = true;

        /// <summary>
        /// The agent listener's external URIs (scheme and authority, optionally a path prefix), as agents
        /// address it: a proof's <c>htu</c> must be one of them + <c>/credbroker.v1.AgentBroker/&lt;Method&gt;</c>.
        /// Set them whenever agents reach the broker by a DNS name, a load balancer or a proxy. Empty: the
        /// listener's own address (<c>http</c>, or <c>https</c> with Listen:Tls; plus <c>localhost</c> on loopback) and AgentPort.
        /// </summary>
        public List<string> AgentUris { get; set; } = [];

        /// <summary>Oldest accepted proof <c>iat</c> (default 60 s); proof <c>jti</c>s are remembered this long plus MaxProofFuture.</summary>
        public TimeSpan MaxProofAge { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>Furthest accepted proof <c>iat</c> ahead of the broker's clock (default 5 s).</summary>
        public TimeSpan MaxProofFuture { get; set; } = TimeSpan.FromSeconds(5);

        /// <summary>Longest accepted proof in characters (default 4096).</summary>
        public int MaxProofSize { get; set; } = 4096;

        /// <summary>Accepted proof algorithms (default ES256, ES384, ES512, PS256, RS256; never none or HS*).</summary>
        public List<string> Algorithms { get; set; } = [];

        /// <summary>Dev mode's in-memory replay store: most live proof <c>jti</c>s (default 100,000; when full, proofs are refused).</summary>
        public int ReplayCacheSize { get; set; } = 100_000;

        public DpopProofOptions ProofOptions() => new()
        {
            MaxAge = MaxProofAge,
            MaxFuture = MaxProofFuture,
            MaxProofSize = MaxProofSize,
            Algorithms = Algorithms.Count > 0 ? Algorithms : DpopProofValidator.SupportedAlgorithms,
        };

        /// <summary>The URIs a proof's <c>htu</c> may name for <paramref name="method"/> (<c>/credbroker.v1.AgentBroker/X</c>).</summary>
        public IReadOnlyList<Uri> AgentListenerUris(ListenOptions listen)
        {
            if (AgentUris.Count > 0)
            {
                return [.. AgentUris.Select(u => new Uri(u.TrimEnd('/') + "/"))];
            }

            var scheme = listen.Tls is null ? "http" : "https";
            var hosts = new List<string> { IPAddress.TryParse(listen.Address, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{listen.Address}]" : listen.Address };
            if (ip is not null && IPAddress.IsLoopback(ip))
            {
                hosts.Add("localhost");
            }

            return [.. hosts.Select(h => new Uri($"{scheme}://{h}:{listen.AgentPort}/"))];
        }
    }
}
