using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// What a connection string should not carry: the password (from a mounted secret file) and the
/// CA that Redis's TLS certificate must chain to (a private CA instead of the system trust store).
/// </summary>
public sealed record RedisConnectionSecurity(string? Password, X509Certificate2Collection? TrustedCas)
{
    /// <summary>Accepts a server certificate only if its name matches and it chains to one of <paramref name="roots"/>.</summary>
    /// <summary>
    /// Parses a StackExchange.Redis configuration string and applies the password, the private CA and
    /// the broker's connection rules: never abort on a failed first connect (calls fail closed until
    /// Redis is back), 2 s connect and sync timeouts.
    /// </summary>
    public static ConfigurationOptions Configure(string configuration, RedisConnectionSecurity? security)
    {
        var config = ConfigurationOptions.Parse(configuration);
        if (security?.Password is { Length: > 0 } password)
        {
            config.Password = password;
        }

        if (security?.TrustedCas is { Count: > 0 } roots)
        {
            if (!config.Ssl)
            {
                throw new ArgumentException("A Redis CA was given but the configuration does not enable TLS (add ssl=true).", nameof(security));
            }

            config.CertificateValidation += (_, certificate, _, errors) => ChainsTo(certificate, errors, roots);
        }

        config.AbortOnConnectFail = false;
        config.ConnectTimeout = Math.Min(config.ConnectTimeout, 2000);
        config.SyncTimeout = Math.Min(config.SyncTimeout, 2000);
        return config;
    }

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
