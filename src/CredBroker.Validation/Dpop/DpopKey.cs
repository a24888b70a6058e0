using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CredBroker.Validation.Internal;

namespace CredBroker.Validation;

/// <summary>
/// A client's DPoP key (ES256, P-256) and the proofs it signs (RFC 9449 §4.2): generated per process
/// (<see cref="Generate"/>) or supplied (<see cref="FromPem"/>, <see cref="FromECDsa"/>). Tokens minted
/// for its proofs carry <see cref="Thumbprint"/> as <c>cnf.jkt</c> and are usable only with it.
/// </summary>
public sealed class DpopKey : IDisposable
{
    private readonly ECDsa _key;
    private readonly string _headerSegment;

    private DpopKey(ECDsa key)
    {
        if (key.KeySize != 256)
        {
            throw new ArgumentException("A DPoP key must be an EC P-256 key (ES256).", nameof(key));
        }

        _key = key;
        var q = key.ExportParameters(false).Q;
        var x = StrictBase64Url.Encode(q.X);
        var y = StrictBase64Url.Encode(q.Y);
        PublicJwk = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{x}\",\"y\":\"{y}\"}}";
        // The RFC 7638 members in order are exactly the public JWK above.
        Thumbprint = StrictBase64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(PublicJwk)));
        _headerSegment = StrictBase64Url.Encode(Encoding.UTF8.GetBytes($"{{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":{PublicJwk}}}"));
    }

    /// <summary>The public key as a JWK (crv, kty, x, y).</summary>
    public string PublicJwk { get; }

    /// <summary>The RFC 7638 SHA-256 thumbprint (base64url): the <c>cnf.jkt</c> of tokens bound to this key.</summary>
    public string Thumbprint { get; }

    /// <summary>A new P-256 key, held in memory only.</summary>
    public static DpopKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Takes ownership of an existing P-256 private key.</summary>
    public static DpopKey FromECDsa(ECDsa key) => new(key ?? throw new ArgumentNullException(nameof(key)));

    /// <summary>A P-256 private key from PEM text (PKCS#8 or SEC1).</summary>
    public static DpopKey FromPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            return new DpopKey(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A fresh proof for one request: <paramref name="method"/> and <paramref name="uri"/> (query and
    /// fragment dropped), a random <c>jti</c>, <c>iat</c> = <paramref name="now"/> (default: the clock),
    /// and <c>ath</c> when an access token is presented with it.
    /// </summary>
    public string CreateProof(string method, Uri uri, string? accessToken = null, DateTimeOffset? now = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        ArgumentNullException.ThrowIfNull(uri);
        Span<byte> id = stackalloc byte[16];
        RandomNumberGenerator.Fill(id);
        var payload = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(payload))
        {
            json.WriteStartObject();
            json.WriteString("jti", StrictBase64Url.Encode(id));
            json.WriteString("htm", method);
            json.WriteString("htu", DpopProofValidator.Normalize(uri));
            json.WriteNumber("iat", (now ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds());
            if (accessToken is not null)
            {
                json.WriteString("ath", StrictBase64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))));
            }

            json.WriteEndObject();
        }

        var signingInput = _headerSegment + "." + StrictBase64Url.Encode(payload.WrittenSpan);
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + StrictBase64Url.Encode(signature);
    }

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}
