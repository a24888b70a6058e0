using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CredBroker.Server.Auth;

/// <summary>What a verified TLS client certificate says: its SPIFFE id and its RFC 8705 thumbprint.</summary>
public static class ClientCertificates
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly Asn1Tag UriName = new(TagClass.ContextSpecific, 6);

    /// <summary>base64url(SHA-256(DER)), the <c>x5t#S256</c> of a certificate-bound token.</summary>
    public static string Thumbprint(X509Certificate2 certificate) =>
        System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(certificate.RawData));

    /// <summary>The SPIFFE id: an X.509-SVID carries exactly one URI SAN, <c>spiffe://trust-domain/path</c>; anything else is null.</summary>
    public static string? SpiffeId(X509Certificate2 certificate)
    {
        if (certificate.Extensions[SubjectAltNameOid] is not { } san)
        {
            return null;
        }

        var uris = new List<string>();
        try
        {
            var names = new AsnReader(san.RawData, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.HasSameClassAndValue(UriName))
                {
                    uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, UriName));
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException)
        {
            return null;
        }

        return uris.Count == 1 && uris[0].StartsWith("spiffe://", StringComparison.Ordinal) && uris[0].Length <= 2048 ? uris[0] : null;
    }
}
