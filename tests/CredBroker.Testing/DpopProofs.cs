using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace CredBroker.Testing;

/// <summary>
/// DPoP proofs built member by member for the refusal tests (any header, any claim, any key), signed
/// here with .NET's ECDsa/RSA directly, not with <c>DpopKey</c>, so a test can break one check at a time.
/// </summary>
public static class DpopProofs
{
    public static string B64(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The public JWK of a P-256 key.</summary>
    public static JsonObject Jwk(ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return new JsonObject { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = B64(q.X), ["y"] = B64(q.Y) };
    }

    /// <summary>RFC 7638 thumbprint of a P-256 key, spelled out here.</summary>
    public static string Thumbprint(ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return B64(SHA256.HashData(Encoding.UTF8.GetBytes($"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{B64(q.X)}\",\"y\":\"{B64(q.Y)}\"}}")));
    }

    /// <summary>
    /// A valid ES256 proof for <paramref name="htu"/> unless <paramref name="header"/> or
    /// <paramref name="payload"/> change it; <paramref name="sign"/> replaces the signature step.
    /// </summary>
    public static string Make(ECDsa key, string htu, Action<JsonObject>? header = null, Action<JsonObject>? payload = null,
        Func<byte[], byte[]>? sign = null, DateTimeOffset? now = null)
    {
        var h = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = "ES256", ["jwk"] = Jwk(key) };
        var p = new JsonObject
        {
            ["jti"] = Guid.NewGuid().ToString("N"), ["htm"] = "POST", ["htu"] = htu, ["iat"] = (now ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        header?.Invoke(h);
        payload?.Invoke(p);
        var input = B64(Encoding.UTF8.GetBytes(h.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(p.ToJsonString()));
        var bytes = Encoding.ASCII.GetBytes(input);
        var signature = sign is not null ? sign(bytes) : key.SignData(bytes, HashAlgorithmName.SHA256);
        return input + "." + B64(signature);
    }
}
