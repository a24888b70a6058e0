using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CredBroker.Validation.Internal;

namespace CredBroker.Validation;

/// <summary>
/// The broker's published signing keys (a JWKS, RFC 7517), reduced to what may verify a token:
/// EC P-256 keys for ES256 signatures. Immutable; a refresh replaces the whole set.
/// </summary>
public sealed class SigningKeySet
{
    private readonly Dictionary<string, VerificationKey> _keys;

    private SigningKeySet(Dictionary<string, VerificationKey> keys) => _keys = keys;

    /// <summary>The key ids in the set.</summary>
    public IReadOnlyCollection<string> KeyIds => _keys.Keys;

    /// <summary>
    /// Parses a JWKS document. Keys that are not for ES256 signatures (another <c>kty</c>/<c>crv</c>,
    /// <c>alg</c> other than ES256, <c>use</c> other than <c>sig</c>) are skipped; a document that
    /// is not a JWKS, has duplicate member names, an ES256 key without a kid or with a bad point,
    /// or two keys with one kid is rejected whole.
    /// </summary>
    /// <exception cref="FormatException">The document is not an acceptable JWKS.</exception>
    public static SigningKeySet Parse(string jwksJson)
    {
        ArgumentNullException.ThrowIfNull(jwksJson);
        using var document = StrictJson.TryParseObject(Encoding.UTF8.GetBytes(jwksJson), out var error)
            ?? throw new FormatException($"The JWKS is not a JSON object without duplicate members ({error}).");
        if (!document.RootElement.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("The JWKS has no \"keys\" array.");
        }

        var result = new Dictionary<string, VerificationKey>(StringComparer.Ordinal);
        foreach (var jwk in keys.EnumerateArray())
        {
            if (jwk.ValueKind != JsonValueKind.Object || !IsEs256SigningKey(jwk))
            {
                continue;
            }

            var kid = StrictJson.GetString(jwk, "kid");
            if (string.IsNullOrEmpty(kid))
            {
                throw new FormatException("An ES256 key in the JWKS has no kid.");
            }

            if (!result.TryAdd(kid, new VerificationKey(kid, PublicKey(jwk, kid))))
            {
                throw new FormatException($"Two keys in the JWKS share the kid '{kid}'.");
            }
        }

        return new SigningKeySet(result);
    }

    /// <summary>The key with this kid (ordinal match), or null.</summary>
    public VerificationKey? Find(string kid) => _keys.GetValueOrDefault(kid);

    private static bool IsEs256SigningKey(JsonElement jwk) =>
        StrictJson.GetString(jwk, "kty") == "EC"
        && StrictJson.GetString(jwk, "crv") == "P-256"
        && IsAbsentOr(jwk, "alg", "ES256")
        && IsAbsentOr(jwk, "use", "sig");

    private static bool IsAbsentOr(JsonElement jwk, string name, string expected) =>
        !jwk.TryGetProperty(name, out var value) || (value.ValueKind == JsonValueKind.String && value.GetString() == expected);

    private static ECParameters PublicKey(JsonElement jwk, string kid)
    {
        var x = Coordinate(jwk, "x");
        var y = Coordinate(jwk, "y");
        if (x is null || y is null)
        {
            throw new FormatException($"The key '{kid}' has no valid 32-byte x and y coordinates.");
        }

        var parameters = new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = x, Y = y } };
        try
        {
            // Importing checks that the point is on the curve.
            using var _ = ECDsa.Create(parameters);
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"The key '{kid}' is not a valid P-256 public key.", e);
        }

        return parameters;
    }

    private static byte[]? Coordinate(JsonElement jwk, string name) =>
        StrictJson.GetString(jwk, name) is { } text && StrictBase64Url.TryDecode(text) is { Length: 32 } bytes ? bytes : null;
}
