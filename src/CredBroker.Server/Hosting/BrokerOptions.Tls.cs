namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class TlsOptions
    {
        public string CertificateFile { get; set; } = string.Empty;

        public string KeyFile { get; set; } = string.Empty;

        /// <summary>CA for client certificates (mTLS); unset = TLS without client certificates.</summary>
        public string? ClientCaFile { get; set; }

        /// <summary>With a client CA: refuse callers without a certificate (default) or let them use a bearer credential.</summary>
        public bool RequireClientCertificate { get; set; } = true;
    }
}
