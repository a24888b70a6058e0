using System.Security.Cryptography;
using System.Text;

namespace CredBroker.Core.Tokens;

/// <summary>An ES256 (P-256) key. The private half never leaves the process; only the JWK is published.</summary>
public sealed class SigningKey : IDisposable
{
    private readonly ECDsa _key;

    public SigningKey(ECDsa key)
    {
        var parameters = key.ExportParameters(includePrivateParameters: false);
        if (parameters.Curve.Oid?.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            throw new ArgumentException("Signing keys must be EC P-256 (ES256).", nameof(key));
        }

        _key = key;
        X = Base64Url.Encode(parameters.Q.X!);
        Y = Base64Url.Encode(parameters.Q.Y!);
        // RFC 7638 thumbprint: the kid is derived from the key, so it is stable across restarts.
        var canonical = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{X}\",\"y\":\"{Y}\"}}";
        Kid = Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    public string Kid { get; }

    public string X { get; }

    public string Y { get; }

    internal ECDsa Ecdsa => _key;

    /// <summary>A verify-only key from a published JWK's coordinates (a key whose file this replica lacks).</summary>
    public static SigningKey FromPublic(string x, string y)
    {
        var ecdsa = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Base64Url.TryDecode(x), Y = Base64Url.TryDecode(y) },
        });
        return new SigningKey(ecdsa);
    }

    public static SigningKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Loads a PEM (PKCS#8 or SEC1) EC private key.</summary>
    public static SigningKey FromPemFile(string path)
    {
        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(File.ReadAllText(path));
            return new SigningKey(ecdsa);
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            ecdsa.Dispose();
            throw new InvalidOperationException($"{path}: not a PEM EC P-256 private key ({e.Message}).", e);
        }
    }

    /// <summary>IEEE P1363 (r||s) signature, the JWS encoding for ES256.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) =>
        _key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose() => _key.Dispose();
}
