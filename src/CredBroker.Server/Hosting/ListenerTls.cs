using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace CredBroker.Server.Hosting;

/// <summary>TLS for a gRPC listener: certificate and key from PEM files, optional client certificates checked against a CA.</summary>
public sealed record ListenerTlsOptions
{
    /// <summary>PEM certificate (chain) the listener presents.</summary>
    public required string CertificateFile { get; init; }

    /// <summary>PEM private key of <see cref="CertificateFile"/>.</summary>
    public required string KeyFile { get; init; }

    /// <summary>PEM CA certificate(s) client certificates must chain to; null = no client certificates (plain TLS).</summary>
    public string? ClientCaFile { get; init; }

    /// <summary>With a CA: refuse the handshake without a client certificate (true) or accept callers without one (false).</summary>
    public bool RequireClientCertificate { get; init; } = true;
}

public static class ListenerTls
{
    /// <summary>
    /// Serves HTTP/2 over TLS (ALPN h2) on <paramref name="listen"/>. A client certificate, when the
    /// options name a CA, must chain to that CA alone (the system store is not consulted) and be
    /// valid for client authentication; handlers see it on the connection.
    /// </summary>
    public static void UseListenerTls(this ListenOptions listen, ListenerTlsOptions tls)
    {
        var certificate = LoadCertificate(tls);
        var clientCas = tls.ClientCaFile is { } caFile ? LoadCas(caFile) : null;
        listen.Protocols = HttpProtocols.Http2;
        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificate,
            ClientCertificateMode = clientCas is null ? ClientCertificateMode.NoCertificate
                : tls.RequireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate,
            ClientCertificateValidation = (client, _, _) => clientCas is not null && IsValidClientCertificate(client, clientCas),
            CheckCertificateRevocation = false,
        });
    }

    /// <summary>True when <paramref name="client"/> chains to one of <paramref name="cas"/> and allows client authentication.</summary>
    public static bool IsValidClientCertificate(X509Certificate2 client, X509Certificate2Collection cas) =>
        ChainsTo(client, cas, requiredUsage: "1.3.6.1.5.5.7.3.2"); // clientAuth

    /// <summary>
    /// True when <paramref name="certificate"/> chains to one of <paramref name="roots"/> alone (the
    /// system store is not consulted), and carries the <paramref name="requiredUsage"/> EKU when given.
    /// </summary>
    internal static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection roots, string? requiredUsage)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (requiredUsage is not null)
        {
            chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(requiredUsage));
        }

        return chain.Build(certificate);
    }

    private static X509Certificate2 LoadCertificate(ListenerTlsOptions tls)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(tls.CertificateFile, tls.KeyFile);
            // Round trip through PKCS#12 so SslStream can use the key on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Cannot load the TLS certificate '{tls.CertificateFile}' with key '{tls.KeyFile}': {e.Message}", e);
        }
    }

    private static X509Certificate2Collection LoadCas(string file)
    {
        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPemFile(file);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Cannot load the client CA file '{file}': {e.Message}", e);
        }

        return cas.Count > 0 ? cas : throw new InvalidOperationException($"The client CA file '{file}' holds no certificate.");
    }
}
