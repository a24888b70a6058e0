using System.Net;

namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class ListenOptions
    {
        public string Address { get; set; } = "127.0.0.1";

        public int HttpPort { get; set; } = 5400;

        public int AgentPort { get; set; } = 5401;

        public int OperatorPort { get; set; } = 5402;

        /// <summary>The web console (HTTP/1.1, and HTTP/2 over TLS; TLS from <see cref="Tls"/>); 0 = no console.</summary>
        public int ConsolePort { get; set; } = 5403;

        /// <summary>TLS for both gRPC listeners; without it they speak h2c, which production allows on loopback only.</summary>
        public TlsOptions? Tls { get; set; }

        /// <summary>Serve h2c on a non-loopback address (e.g. behind a mesh sidecar that terminates TLS).</summary>
        public bool AllowPlaintext { get; set; }

        public Http2Options Http2 { get; set; } = new();

        public GrpcOptions Grpc { get; set; } = new();

        public IPAddress ParsedAddress => IPAddress.Parse(Address);
    }
}
