using System.Text;
using System.Text.Json;

namespace CredBroker.Core.Tokens;

/// <summary>The keys tokens are signed with (one current) and validated against (all published).</summary>
public interface ISigningKeys
{
    SigningKey Current { get; }

    IReadOnlyList<SigningKey> Published { get; }

    SigningKey? Find(string kid);

    /// <summary>The JWKS document of <see cref="Published"/>, or null while no key is known yet.</summary>
    string? JwksJson { get; }
}

/// <summary>A fixed set of keys; the first signs, all are published. For tools and tests; the broker rotates (<see cref="RotatingSigningKeys"/>).</summary>
public sealed class StaticSigningKeys : ISigningKeys
{
    public StaticSigningKeys(IReadOnlyList<SigningKey> keys)
    {
        if (keys.Count == 0)
        {
            throw new ArgumentException("At least one signing key is required.", nameof(keys));
        }

        Published = keys;
        JwksJson = Jwks.Write(keys);
    }

    public SigningKey Current => Published[0];

    public IReadOnlyList<SigningKey> Published { get; }

    public string? JwksJson { get; }

    public SigningKey? Find(string kid) => Published.FirstOrDefault(k => k.Kid == kid);
}

public static class Jwks
{
    /// <summary>The JWKS document (RFC 7517) of the published public keys.</summary>
    public static string Write(IEnumerable<SigningKey> keys)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteStartArray("keys");
            foreach (var key in keys)
            {
                json.WriteStartObject();
                json.WriteString("kty", "EC");
                json.WriteString("crv", "P-256");
                json.WriteString("x", key.X);
                json.WriteString("y", key.Y);
                json.WriteString("kid", key.Kid);
                json.WriteString("alg", "ES256");
                json.WriteString("use", "sig");
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
