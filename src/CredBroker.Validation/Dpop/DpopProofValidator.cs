using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CredBroker.Validation.Internal;

namespace CredBroker.Validation;

/// <summary>
/// Checks DPoP proofs (RFC 9449 §4.3) in a fixed order, the first failure being the reason: size,
/// structure, <c>typ</c>, <c>alg</c>, <c>jwk</c>, signature, <c>htm</c>, <c>htu</c>, <c>iat</c>,
/// <c>jti</c>, <c>ath</c>. Replay is the caller's last step, with the <see cref="DpopProof.ReplayKey"/>
/// in a store shared by every instance that accepts the same proofs (<see cref="DpopReplayCache"/>
/// in memory, or the broker's Redis store). Asymmetric algorithms only: ES256 (P-256), ES384
/// (P-384), ES512 (P-521), PS256 and RS256 (RSA, 2048 to 8192 bits); never <c>none</c> or HS*.
/// </summary>
public static class DpopProofValidator
{
    /// <summary>The <c>typ</c> header of a DPoP proof.</summary>
    public const string ProofType = "dpop+jwt";

    /// <summary>Every <c>alg</c> this library verifies.</summary>
    public static readonly IReadOnlyCollection<string> SupportedAlgorithms = ["ES256", "ES384", "ES512", "PS256", "RS256"];

    /// <summary>Longest accepted <c>jti</c>.</summary>
    public const int MaxTokenIdLength = 256;

    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Most imported keys kept per thread (a client reuses its key; importing costs several verifications).</summary>
    private const int KeysPerThread = 64;

    // ECDsa/RSA instances are not documented as thread-safe: each thread keeps its own imports, bounded.
    [ThreadStatic]
    private static Dictionary<string, AsymmetricAlgorithm>? t_keys;

    /// <summary>Checks <paramref name="proof"/> for a request with <paramref name="method"/> to <paramref name="uri"/>.</summary>
    /// <param name="proof">The compact JWS from the <c>DPoP</c> header (or the broker's <c>dpop</c> metadata).</param>
    /// <param name="method">The request's HTTP method (gRPC: always POST).</param>
    /// <param name="uri">The URI the request was sent to, as this server is known to its callers (absolute http or https).</param>
    /// <param name="now">The current time.</param>
    /// <param name="options">Window, size and algorithms.</param>
    /// <param name="accessToken">The access token presented with the proof: <c>ath</c> must be its hash. Null when none is (a token request).</param>
    public static DpopProofResult Validate(string? proof, string method, Uri uri, DateTimeOffset now, DpopProofOptions options, string? accessToken = null)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return Validate(proof, method, [uri], now, options, accessToken);
    }

    /// <summary>As <see cref="Validate(string?, string, Uri, DateTimeOffset, DpopProofOptions, string?)"/>, for a server known by several URIs (e.g. a DNS name and an address): <c>htu</c> must be one of <paramref name="uris"/>.</summary>
    public static DpopProofResult Validate(string? proof, string method, IReadOnlyList<Uri> uris, DateTimeOffset now, DpopProofOptions options, string? accessToken = null)
    {
        ArgumentNullException.ThrowIfNull(uris);
        ArgumentNullException.ThrowIfNull(options);
        if (uris.Count == 0)
        {
            throw new ArgumentException("At least one URI.", nameof(uris));
        }
        if (string.IsNullOrEmpty(proof))
        {
            return DpopProofResult.Fail(DpopErrors.Missing, "no DPoP proof.");
        }

        if (proof.Length > options.MaxProofSize)
        {
            return DpopProofResult.Fail(DpopErrors.Size, $"the proof is {proof.Length} characters, over the {options.MaxProofSize} limit.");
        }

        var parts = proof.Split('.');
        if (parts.Length != 3
            || StrictBase64Url.TryDecode(parts[0]) is not { } headerBytes
            || StrictBase64Url.TryDecode(parts[1]) is not { } payloadBytes
            || StrictBase64Url.TryDecode(parts[2]) is not { } signature)
        {
            return DpopProofResult.Fail(DpopErrors.Malformed, "not a compact JWS (three base64url parts).");
        }

        using var header = StrictJson.TryParseObject(headerBytes, out _);
        using var payload = StrictJson.TryParseObject(payloadBytes, out _);
        if (header is null || payload is null)
        {
            return DpopProofResult.Fail(DpopErrors.Malformed, "the header or payload is not one JSON object without duplicate members.");
        }

        var h = header.RootElement;
        foreach (var member in h.EnumerateObject())
        {
            if (member.Name is not ("typ" or "alg" or "jwk"))
            {
                return DpopProofResult.Fail(DpopErrors.Type, $"the header member '{Printable(member.Name)}' is not allowed (only typ, alg, jwk).");
            }
        }

        if (StrictJson.GetString(h, "typ") != ProofType)
        {
            return DpopProofResult.Fail(DpopErrors.Type, $"typ must be '{ProofType}'.");
        }

        var alg = StrictJson.GetString(h, "alg");
        if (alg is null || !SupportedAlgorithms.Contains(alg) || !options.Algorithms.Contains(alg))
        {
            return DpopProofResult.Fail(DpopErrors.Algorithm, $"alg '{Printable(alg ?? "")}' is not accepted (accepted: {string.Join(", ", options.Algorithms)}).");
        }

        if (!h.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object)
        {
            return DpopProofResult.Fail(DpopErrors.Key, "the header has no jwk object.");
        }

        if (ReadKey(jwk, alg, out var keyError) is not { } key)
        {
            return DpopProofResult.Fail(DpopErrors.Key, keyError!);
        }

        using (key)
        {
            var signingInput = Encoding.ASCII.GetBytes(proof, 0, parts[0].Length + 1 + parts[1].Length);
            if (!key.Verify(signingInput, signature))
            {
                return DpopProofResult.Fail(DpopErrors.Signature, "the signature does not verify with the embedded jwk.");
            }
        }

        var p = payload.RootElement;
        if (StrictJson.GetString(p, "htm") is not { } htm || !string.Equals(htm, method, StringComparison.Ordinal))
        {
            return DpopProofResult.Fail(DpopErrors.Method, $"htm must be '{method}'.");
        }

        if (StrictJson.GetString(p, "htu") is not { } htu || !System.Uri.TryCreate(htu, UriKind.Absolute, out var sent)
            || sent.Scheme is not ("http" or "https") || !uris.Any(u => string.Equals(Normalize(sent), Normalize(u), StringComparison.Ordinal)))
        {
            return DpopProofResult.Fail(DpopErrors.Uri, $"htu must be {string.Join(" or ", uris.Select(u => "'" + Normalize(u) + "'"))}.");
        }

        if (!p.TryGetProperty("iat", out var iatElement) || iatElement.ValueKind != JsonValueKind.Number
            || !iatElement.TryGetInt64(out var iatSeconds) || iatSeconds is < 0 or > 253402300799)
        {
            return DpopProofResult.Fail(DpopErrors.IssuedAt, "iat is missing or not a whole number of seconds.");
        }

        var iat = DateTimeOffset.FromUnixTimeSeconds(iatSeconds);
        // iat has second precision: a proof made now may read up to a second earlier.
        if (iat < now - options.MaxAge - TimeSpan.FromSeconds(1) || iat > now + options.MaxFuture)
        {
            return DpopProofResult.Fail(DpopErrors.IssuedAt,
                $"iat is {(now - iat).TotalSeconds:0} s from now; accepted is {options.MaxAge.TotalSeconds:0} s old to {options.MaxFuture.TotalSeconds:0} s ahead (check the clock).");
        }

        if (StrictJson.GetString(p, "jti") is not { Length: > 0 and <= MaxTokenIdLength } jti)
        {
            return DpopProofResult.Fail(DpopErrors.TokenId, $"jti must be a string of 1 to {MaxTokenIdLength} characters.");
        }

        if (accessToken is not null)
        {
            var hash = StrictBase64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
            if (StrictJson.GetString(p, "ath") is not { } ath
                || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ath), Encoding.ASCII.GetBytes(hash)))
            {
                return DpopProofResult.Fail(DpopErrors.AccessTokenHash, "ath must be the base64url SHA-256 of the access token.");
            }
        }

        return new DpopProofResult(new DpopProof(Thumbprint(jwk)!, jti, iat, alg), null, null);
    }

    /// <summary>
    /// The RFC 7638 SHA-256 thumbprint (base64url) of a public JWK: the required members in
    /// lexicographic order, no whitespace. Null for a key type this library does not accept.
    /// </summary>
    public static string? Thumbprint(JsonElement jwk)
    {
        var kty = StrictJson.GetString(jwk, "kty");
        string? canonical = kty switch
        {
            "EC" => $"{{\"crv\":{Quote(jwk, "crv")},\"kty\":\"EC\",\"x\":{Quote(jwk, "x")},\"y\":{Quote(jwk, "y")}}}",
            "RSA" => $"{{\"e\":{Quote(jwk, "e")},\"kty\":\"RSA\",\"n\":{Quote(jwk, "n")}}}",
            _ => null,
        };
        return canonical is null ? null : StrictBase64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>The replay-cache key of a proof: base64url SHA-256 of thumbprint and <c>jti</c>.</summary>
    public static string ReplayKeyOf(string keyThumbprint, string jti) =>
        StrictBase64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(keyThumbprint + "." + jti)));

    /// <summary>Scheme, authority (lower-case, default port omitted) and path: what <c>htu</c> is compared on.</summary>
    public static string Normalize(Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
    }

    private static string Quote(JsonElement jwk, string name) => JsonSerializer.Serialize(StrictJson.GetString(jwk, name) ?? "");

    private static string Printable(string text) => text.Length > 32 || text.Any(char.IsControl) ? text[..Math.Min(32, text.Length)].Replace('\n', ' ').Replace('\r', ' ') + "…" : text;

    private static ProofKey? ReadKey(JsonElement jwk, string alg, out string? error)
    {
        foreach (var member in PrivateMembers)
        {
            if (jwk.TryGetProperty(member, out _))
            {
                error = $"the jwk carries the private member '{member}'; send the public key only.";
                return null;
            }
        }

        var kty = StrictJson.GetString(jwk, "kty");
        try
        {
            if (alg.StartsWith("ES", StringComparison.Ordinal))
            {
                var (curveName, curve, size) = alg switch
                {
                    "ES256" => ("P-256", ECCurve.NamedCurves.nistP256, 32),
                    "ES384" => ("P-384", ECCurve.NamedCurves.nistP384, 48),
                    _ => ("P-521", ECCurve.NamedCurves.nistP521, 66),
                };
                if (kty != "EC" || StrictJson.GetString(jwk, "crv") != curveName)
                {
                    error = $"{alg} needs an EC jwk on {curveName}.";
                    return null;
                }

                if (StrictBase64Url.TryDecode(StrictJson.GetString(jwk, "x")) is not { Length: var xl } x || xl != size
                    || StrictBase64Url.TryDecode(StrictJson.GetString(jwk, "y")) is not { Length: var yl } y || yl != size)
                {
                    error = $"the jwk's x and y must be {size}-byte base64url coordinates.";
                    return null;
                }

                var ec = (ECDsa)Imported(curveName + "." + StrictJson.GetString(jwk, "x") + "." + StrictJson.GetString(jwk, "y"),
                    () => ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } }));
                error = null;
                return new ProofKey(ec, null, alg);
            }

            if (kty != "RSA")
            {
                error = $"{alg} needs an RSA jwk.";
                return null;
            }

            if (StrictBase64Url.TryDecode(StrictJson.GetString(jwk, "n")) is not { } n || n.Length is < 256 or > 1024 || n[0] == 0
                || StrictBase64Url.TryDecode(StrictJson.GetString(jwk, "e")) is not { Length: > 0 and <= 8 } e)
            {
                error = "the jwk's n must be a 2048- to 8192-bit modulus and e a public exponent.";
                return null;
            }

            var rsa = (RSA)Imported("RSA." + StrictJson.GetString(jwk, "n") + "." + StrictJson.GetString(jwk, "e"),
                () => RSA.Create(new RSAParameters { Modulus = n, Exponent = e }));
            error = null;
            return new ProofKey(null, rsa, alg);
        }
        catch (CryptographicException)
        {
            error = "the jwk is not a valid public key (e.g. not a point on the curve).";
            return null;
        }
    }

    /// <summary>This thread's import of the public key named by <paramref name="id"/> (its curve or type and its canonical members).</summary>
    private static AsymmetricAlgorithm Imported(string id, Func<AsymmetricAlgorithm> import)
    {
        var keys = t_keys ??= new Dictionary<string, AsymmetricAlgorithm>(StringComparer.Ordinal);
        if (keys.TryGetValue(id, out var key))
        {
            return key;
        }

        key = import();
        if (keys.Count >= KeysPerThread)
        {
            foreach (var old in keys.Values)
            {
                old.Dispose();
            }

            keys.Clear();
        }

        keys[id] = key;
        return key;
    }

    /// <summary>A verifier over a cached key (owned by the thread's cache, never disposed here).</summary>
    private sealed class ProofKey(ECDsa? ec, RSA? rsa, string alg) : IDisposable
    {
        public bool Verify(byte[] data, byte[] signature) => alg switch
        {
            "ES256" => ec!.VerifyData(data, signature, HashAlgorithmName.SHA256),
            "ES384" => ec!.VerifyData(data, signature, HashAlgorithmName.SHA384),
            "ES512" => ec!.VerifyData(data, signature, HashAlgorithmName.SHA512),
            "PS256" => rsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
            _ => rsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        };

        public void Dispose()
        {
        }
    }
}
