using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace CredBroker.Redis;

/// <summary>
/// What a connection string should not carry: the password (from a mounted secret file) and the
/// CA that Redis's TLS certificate must chain to (a private CA instead of the system trust store).
/// </summary>
public sealed record RedisConnectionSecurity(string? Password, X509Certificate2Collection? TrustedCas)
{
    /// <summary>Accepts a server certificate only if its name matches and it chains to one of <paramref name="roots"/>.</summary>
    internal static bool ChainsTo(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        // A name mismatch or a missing certificate is never excused; only the chain is judged here.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(server);
    }
}
