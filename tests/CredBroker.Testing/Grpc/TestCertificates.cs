using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CredBroker.Testing.Grpc;

/// <summary>
/// A throwaway PKI generated per run (never committed): a CA, a server certificate for
/// localhost/127.0.0.1, a client certificate with a SPIFFE URI SAN, and a client certificate
/// from an unrelated CA. Written as PEM files to <see cref="Directory"/> for non-.NET clients.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    public const string ClientSpiffeId = "spiffe://test.example/ns/agents/sa/interop";

    public const string OperatorSpiffeId = "spiffe://test.example/operators/alice";

    private TestCertificates(string directory)
    {
        Directory = directory;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Ca = CreateCa("CredBroker Test CA", caKey);
        using var rogueCaKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var rogueCa = CreateCa("Rogue CA", rogueCaKey);

        Server = Issue(Ca, caKey, "localhost", serverAuth: true, san =>
        {
            san.AddDnsName("localhost");
            san.AddIpAddress(System.Net.IPAddress.Loopback);
        });
        Client = Issue(Ca, caKey, "interop-client", serverAuth: false, san => san.AddUri(new Uri(ClientSpiffeId)));
        OperatorClient = Issue(Ca, caKey, "operator-client", serverAuth: false, san => san.AddUri(new Uri(OperatorSpiffeId)));
        RogueClient = Issue(rogueCa, rogueCaKey, "rogue-client", serverAuth: false, san => san.AddUri(new Uri("spiffe://rogue.example/x")));

        Write("ca.pem", Ca.ExportCertificatePem());
        WritePair("server", Server);
        WritePair("client", Client);
        WritePair("rogue", RogueClient);
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    public X509Certificate2 Client { get; }

    public X509Certificate2 RogueClient { get; }

    /// <summary>A client certificate from the test CA for an operator (SPIFFE id <see cref="OperatorSpiffeId"/>).</summary>
    public X509Certificate2 OperatorClient { get; }

    public string CaFile => Path.Combine(Directory, "ca.pem");

    public string ServerCertFile => Path.Combine(Directory, "server.pem");

    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    public static TestCertificates Create() => new(System.IO.Directory.CreateTempSubdirectory("credbroker-certs-").FullName);

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        Client.Dispose();
        RogueClient.Dispose();
        OperatorClient.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private static X509Certificate2 CreateCa(string name, ECDsa key)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, ECDsa caKey, string name, bool serverAuth, Action<SubjectAlternativeNameBuilder> addNames)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var san = new SubjectAlternativeNameBuilder();
        addNames(san);
        request.CertificateExtensions.Add(san.Build());
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var issued = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
        using var withKey = issued.CopyWithPrivateKey(key);
        // Through PKCS#12 so SslStream can use the private key.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private void WritePair(string name, X509Certificate2 certificate)
    {
        Write(name + ".pem", certificate.ExportCertificatePem());
        Write(name + ".key", certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
    }

    private void Write(string name, string pem) => File.WriteAllText(Path.Combine(Directory, name), pem);
}
