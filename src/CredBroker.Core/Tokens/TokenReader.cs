using System.Text;
using System.Text.Json;

namespace CredBroker.Core.Tokens;

/// <summary>The claims of a token this broker minted and whose signature, issuer and lifetime checked out.</summary>
public sealed record TokenClaims(
    string Issuer, string Subject, string ActorSubject, string Audience, string ClientId, string Scope, string TokenId,
    DateTimeOffset IssuedAt, DateTimeOffset NotBefore, DateTimeOffset ExpiresAt, string LeaseId, string TaskId, string Owner)
{
    /// <summary>The earlier actors nested under <c>act.act</c>, nearest first (empty unless the token was delegated to a sub-agent).</summary>
    public IReadOnlyList<string> Actors { get; init; } = [];

    /// <summary><c>parent_lease_ids</c>: the leases the token's lease was delegated from, nearest first.</summary>
    public IReadOnlyList<string> ParentLeaseIds { get; init; } = [];

    /// <summary><c>cnf.x5t#S256</c>, when the token is bound to a client certificate.</summary>
    public string? CertificateThumbprint { get; init; }

    /// <summary><c>cnf.jkt</c>, when the token is bound to a DPoP key (RFC 9449).</summary>
    public string? KeyThumbprint { get; init; }
}

/// <summary>
/// Strict reader for the broker's own tokens (used by Introspect): exactly the header the minter
/// writes, a known kid, a valid ES256 signature, our issuer, and a lifetime that covers now.
/// Anything else is simply not a valid token (null); the reason is never an oracle for callers.
/// </summary>
public sealed class TokenReader(ISigningKeys keys, string issuer, TimeProvider time)
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 8 };

    public string Issuer => issuer;

    public TokenClaims? Read(string token)
    {
        if (token.Length is 0 or > Broker.Syntax.MaxTokenLength)
        {
            return null;
        }

        var parts = token.Split('.');
        if (parts.Length != 3 || Base64Url.TryDecode(parts[0]) is not { } headerBytes
            || Base64Url.TryDecode(parts[1]) is not { } payloadBytes || Base64Url.TryDecode(parts[2]) is not { } signature)
        {
            return null;
        }

        try
        {
            using var header = JsonDocument.Parse(headerBytes, Strict);
            var h = header.RootElement;
            if (h.ValueKind != JsonValueKind.Object || h.EnumerateObject().Count() != 3
                || String(h, "alg") != "ES256" || String(h, "typ") != "at+jwt" || String(h, "kid") is not { } kid
                || keys.Find(kid) is not { } key
                || !key.Verify(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), signature))
            {
                return null;
            }

            using var payload = JsonDocument.Parse(payloadBytes, Strict);
            var p = payload.RootElement;
            var now = time.GetUtcNow();
            var claims = new TokenClaims(
                String(p, "iss") ?? string.Empty, String(p, "sub") ?? string.Empty,
                p.TryGetProperty("act", out var act) && act.ValueKind == JsonValueKind.Object ? String(act, "sub") ?? string.Empty : string.Empty,
                String(p, "aud") ?? string.Empty, String(p, "client_id") ?? string.Empty, String(p, "scope") ?? string.Empty,
                String(p, "jti") ?? string.Empty, Time(p, "iat"), Time(p, "nbf"), Time(p, "exp"),
                String(p, "lease_id") ?? string.Empty, String(p, "task_id") ?? string.Empty, String(p, "owner") ?? string.Empty)
            {
                Actors = NestedActors(p),
                ParentLeaseIds = p.TryGetProperty("parent_lease_ids", out var parents) && parents.ValueKind == JsonValueKind.Array
                    ? parents.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() ?? string.Empty : string.Empty).ToList()
                    : [],
                CertificateThumbprint = p.TryGetProperty("cnf", out var cnf) && cnf.ValueKind == JsonValueKind.Object ? String(cnf, "x5t#S256") : null,
                KeyThumbprint = cnf.ValueKind == JsonValueKind.Object ? String(cnf, "jkt") : null,
            };
            var valid = claims.Issuer == issuer && !claims.ParentLeaseIds.Contains(string.Empty) && claims.Actors.Count == claims.ParentLeaseIds.Count && claims.LeaseId.Length > 0 && claims.TokenId.Length > 0
                && now < claims.ExpiresAt && now.AddSeconds(5) >= claims.NotBefore;
            return valid ? claims : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            // Malformed input (e.g. a string with a lone surrogate escape, which JsonElement.GetString refuses) is simply not a valid token.
            return null;
        }
    }

    /// <summary>The actors nested below <c>act.sub</c>, nearest first.</summary>
    private static List<string> NestedActors(JsonElement p)
    {
        var actors = new List<string>();
        if (!p.TryGetProperty("act", out var act) || act.ValueKind != JsonValueKind.Object)
        {
            return actors;
        }

        while (act.TryGetProperty("act", out var inner) && inner.ValueKind == JsonValueKind.Object)
        {
            actors.Add(String(inner, "sub") ?? string.Empty);
            act = inner;
        }

        return actors;
    }

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static DateTimeOffset Time(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var s)
            ? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(s, 0, 253402300799))
            : DateTimeOffset.MinValue;
}
