using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CredBroker.Validation.Internal;

namespace CredBroker.Validation;

/// <summary>
/// Validates CredBroker access tokens offline: RFC 9068 (JWT access tokens) under the RFC 8725
/// best practices. Only the exact header the broker writes (<c>typ</c> at+jwt, <c>alg</c> ES256,
/// <c>kid</c>) is accepted, the key comes from the broker's JWKS and nowhere else, and the checks run
/// in a fixed order: size, structure, header, key, signature, claims, issuer, audience, lifetime,
/// scope, certificate binding (<c>cnf.x5t#S256</c>), DPoP binding (<c>cnf.jkt</c>), revocation. The first failing check is the reason code.
/// </summary>
public sealed class AccessTokenValidator
{
    private readonly TokenValidationOptions _options;
    private readonly JwksCache _keys;
    private readonly IRevocationState? _revocation;

    /// <param name="options">Issuer, audience and limits.</param>
    /// <param name="keys">The broker's signing keys.</param>
    /// <param name="revocation">Revoked leases and quarantined agents, consulted last; none by default.</param>
    public AccessTokenValidator(TokenValidationOptions options, JwksCache keys, IRevocationState? revocation = null)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _keys = keys ?? throw new ArgumentNullException(nameof(keys));
        _revocation = revocation;
    }

    /// <summary>
    /// Validates against the keys already loaded (no fetch). A token whose kid is not loaded is
    /// rejected with <c>unknown_kid</c>; use <see cref="ValidateAsync(string, DateTimeOffset, string?, CancellationToken)"/> to follow key rotation.
    /// </summary>
    /// <param name="token">The compact JWS from the <c>Authorization: Bearer</c> header.</param>
    /// <param name="now">The current time.</param>
    /// <param name="clientCertificateThumbprint">The base64url SHA-256 thumbprint of the caller's TLS client certificate, if any.</param>
    public TokenValidationResult Validate(string token, DateTimeOffset now, string? clientCertificateThumbprint = null) =>
        Validate(token, now, clientCertificateThumbprint, dpopKeyThumbprint: null);

    /// <summary>As <see cref="Validate(string, DateTimeOffset, string?)"/>, for a token presented with a verified DPoP proof.</summary>
    /// <param name="token">The compact JWS from the <c>Authorization: DPoP</c> (or Bearer) header.</param>
    /// <param name="now">The current time.</param>
    /// <param name="clientCertificateThumbprint">The base64url SHA-256 thumbprint of the caller's TLS client certificate, if any.</param>
    /// <param name="dpopKeyThumbprint">
    /// The RFC 7638 thumbprint of the key of the DPoP proof presented with the token (see <see cref="DpopProofValidator"/>),
    /// or null when the token came as a bearer token: a token with <c>cnf.jkt</c> then fails with <see cref="DpopErrors.Binding"/>.
    /// </param>
    public TokenValidationResult Validate(string token, DateTimeOffset now, string? clientCertificateThumbprint, string? dpopKeyThumbprint)
    {
        if (!TryParse(token, out var jws, out var error))
        {
            return TokenValidationResult.Failure(error);
        }

        if (_keys.IsStale(now))
        {
            return TokenValidationResult.Failure(TokenErrors.JwksStale);
        }

        return Verify(jws, _keys.Current?.Find(jws.Kid), now, clientCertificateThumbprint, dpopKeyThumbprint);
    }

    /// <summary>As <see cref="Validate(string, DateTimeOffset, string?)"/>, but an unknown kid or a stale key set first triggers a (rate-limited) JWKS refresh.</summary>
    public Task<TokenValidationResult> ValidateAsync(
        string token, DateTimeOffset now, string? clientCertificateThumbprint = null, CancellationToken cancellationToken = default) =>
        ValidateAsync(token, now, clientCertificateThumbprint, dpopKeyThumbprint: null, cancellationToken);

    /// <summary>As <see cref="Validate(string, DateTimeOffset, string?, string?)"/>, following key rotation.</summary>
    public async Task<TokenValidationResult> ValidateAsync(
        string token, DateTimeOffset now, string? clientCertificateThumbprint, string? dpopKeyThumbprint, CancellationToken cancellationToken = default)
    {
        if (!TryParse(token, out var jws, out var error))
        {
            return TokenValidationResult.Failure(error);
        }

        var key = await _keys.FindKeyAsync(jws.Kid, cancellationToken);
        if (_keys.IsStale(now))
        {
            return TokenValidationResult.Failure(TokenErrors.JwksStale);
        }

        return Verify(jws, key, now, clientCertificateThumbprint, dpopKeyThumbprint);
    }

    private bool TryParse(string token, [NotNullWhen(true)] out ParsedJws? jws, [NotNullWhen(false)] out string? error)
    {
        jws = null;
        if (string.IsNullOrEmpty(token))
        {
            error = TokenErrors.Malformed;
            return false;
        }

        if (token.Length > _options.MaxTokenSize)
        {
            error = TokenErrors.Size;
            return false;
        }

        var parts = token.Split('.');
        if (parts.Length != 3
            || StrictBase64Url.TryDecode(parts[0]) is not { } headerBytes
            || StrictBase64Url.TryDecode(parts[1]) is not { } payloadBytes
            || StrictBase64Url.TryDecode(parts[2]) is not { } signature)
        {
            error = TokenErrors.Malformed;
            return false;
        }

        using var header = StrictJson.TryParseObject(headerBytes, out var jsonError);
        if (header is null)
        {
            error = jsonError!;
            return false;
        }

        var h = header.RootElement;
        foreach (var member in h.EnumerateObject())
        {
            if (member.Name is not ("typ" or "alg" or "kid"))
            {
                error = TokenErrors.Header;
                return false;
            }
        }

        if (StrictJson.GetString(h, "typ") != "at+jwt")
        {
            error = TokenErrors.Type;
            return false;
        }

        if (StrictJson.GetString(h, "alg") != "ES256")
        {
            error = TokenErrors.Algorithm;
            return false;
        }

        if (StrictJson.GetString(h, "kid") is not { Length: > 0 } kid)
        {
            error = TokenErrors.KeyId;
            return false;
        }

        jws = new ParsedJws(kid, Encoding.ASCII.GetBytes(token, 0, parts[0].Length + 1 + parts[1].Length), payloadBytes, signature);
        error = null;
        return true;
    }

    private TokenValidationResult Verify(ParsedJws jws, VerificationKey? key, DateTimeOffset now, string? thumbprint, string? dpopThumbprint)
    {
        if (key is null)
        {
            return TokenValidationResult.Failure(TokenErrors.UnknownKey);
        }

        if (!key.VerifyEs256(jws.SigningInput, jws.Signature))
        {
            return TokenValidationResult.Failure(TokenErrors.Signature);
        }

        using var payload = StrictJson.TryParseObject(jws.Payload, out var jsonError);
        if (payload is null)
        {
            return TokenValidationResult.Failure(jsonError!);
        }

        if (ReadClaims(payload.RootElement, out var claimsError) is not { } claims)
        {
            return TokenValidationResult.Failure(claimsError);
        }

        var error = CheckClaims(claims, now, thumbprint, dpopThumbprint);
        return error is null ? TokenValidationResult.Success(claims) : TokenValidationResult.Failure(error);
    }

    private string? CheckClaims(ValidatedToken claims, DateTimeOffset now, string? thumbprint, string? dpopThumbprint)
    {
        var skew = _options.MaxClockSkew;
        if (!string.Equals(claims.Issuer, _options.Issuer, StringComparison.Ordinal))
        {
            return TokenErrors.Issuer;
        }

        if (!string.Equals(claims.Audience, _options.Audience, StringComparison.Ordinal))
        {
            return TokenErrors.Audience;
        }

        if (claims.ExpiresAt <= now - skew)
        {
            return TokenErrors.Expired;
        }

        if (claims.NotBefore > now + skew)
        {
            return TokenErrors.NotYetValid;
        }

        if (claims.IssuedAt > now + skew)
        {
            return TokenErrors.IssuedInFuture;
        }

        var lifetime = claims.ExpiresAt - claims.IssuedAt;
        if (lifetime <= TimeSpan.Zero || lifetime > _options.MaxTokenLifetime)
        {
            return TokenErrors.Lifetime;
        }

        if (claims.Scopes.Count == 0 || claims.Scopes.Any(s => s.Contains('*', StringComparison.Ordinal)))
        {
            return TokenErrors.Scope;
        }

        if (claims.CertificateThumbprint is { } bound
            && (thumbprint is null || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(bound), Encoding.UTF8.GetBytes(thumbprint))))
        {
            return TokenErrors.Confirmation;
        }

        // RFC 9449 §7: a DPoP-bound token only with a proof by its key; a DPoP proof only with a DPoP-bound token.
        if ((claims.KeyThumbprint is not null || dpopThumbprint is not null)
            && (claims.KeyThumbprint is null || dpopThumbprint is null
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(claims.KeyThumbprint), Encoding.UTF8.GetBytes(dpopThumbprint))))
        {
            return DpopErrors.Binding;
        }

        if (_revocation is { IsAvailable: false })
        {
            return TokenErrors.RevocationUnavailable;
        }

        if (_revocation is { IsSynced: false })
        {
            return TokenErrors.RevocationsNotSynced;
        }

        if (_revocation is not null && IsRevoked(_revocation, claims))
        {
            return TokenErrors.Revoked;
        }

        return null;
    }

    /// <summary>Revoked when its own lease or agent is, or any lease up its delegation chain (or that lease's agent) is.</summary>
    private static bool IsRevoked(IRevocationState revocation, ValidatedToken claims)
    {
        if (revocation.IsRevoked(claims.LeaseId, claims.AgentId, claims.IssuedAt))
        {
            return true;
        }

        for (var i = 0; i < claims.ParentLeaseIds.Count; i++)
        {
            if (revocation.IsRevoked(claims.ParentLeaseIds[i], claims.DelegatedBy[i], claims.IssuedAt))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The claims, or null when a required claim is missing or mistyped (or <c>act</c>/<c>cnf</c> is not understood).</summary>
    private static ValidatedToken? ReadClaims(JsonElement p, out string error)
    {
        // RFC 9068 allows an audience array; this profile does not (one token, one API), even when
        // the array holds our audience: the token was meant for more than this API.
        error = p.TryGetProperty("aud", out var audience) && audience.ValueKind == JsonValueKind.Array
            ? TokenErrors.Audience
            : TokenErrors.Claims;
        string? actor = null;
        var delegatedBy = new List<string>();
        if (p.TryGetProperty("act", out var act))
        {
            if (act.ValueKind != JsonValueKind.Object || StrictJson.GetString(act, "sub") is not { Length: > 0 } actSub)
            {
                return null;
            }

            actor = actSub;
            while (act.TryGetProperty("act", out var inner))
            {
                if (inner.ValueKind != JsonValueKind.Object || StrictJson.GetString(inner, "sub") is not { Length: > 0 } innerSub)
                {
                    return null;
                }

                delegatedBy.Add(innerSub);
                act = inner;
            }
        }

        // A delegated token names one parent lease per earlier actor; anything else is not ours to trust.
        var parents = new List<string>();
        if (p.TryGetProperty("parent_lease_ids", out var parentIds))
        {
            if (parentIds.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            foreach (var parent in parentIds.EnumerateArray())
            {
                if (parent.ValueKind != JsonValueKind.String || parent.GetString() is not { Length: > 0 } parentId)
                {
                    return null;
                }

                parents.Add(parentId);
            }
        }

        if (parents.Count != delegatedBy.Count)
        {
            return null;
        }

        string? bound = null;
        string? jkt = null;
        if (p.TryGetProperty("cnf", out var cnf))
        {
            // A confirmation method this validator cannot check must not be ignored: fail closed.
            // It understands x5t#S256 (RFC 8705, mTLS) and jkt (RFC 9449, DPoP); a token may carry both.
            bound = cnf.ValueKind == JsonValueKind.Object ? StrictJson.GetString(cnf, "x5t#S256") : null;
            jkt = cnf.ValueKind == JsonValueKind.Object ? StrictJson.GetString(cnf, "jkt") : null;
            if (cnf.ValueKind != JsonValueKind.Object || (bound is null && jkt is null) || bound is { Length: 0 } || jkt is { Length: 0 }
                || (cnf.TryGetProperty("x5t#S256", out _) && bound is null) || (cnf.TryGetProperty("jkt", out _) && jkt is null))
            {
                error = TokenErrors.Confirmation;
                return null;
            }
        }

        if (Required(p, "iss") is not { } iss || Required(p, "sub") is not { } sub || Required(p, "aud") is not { } aud
            || Required(p, "client_id") is not { } clientId || StrictJson.GetString(p, "scope") is not { } scope
            || Required(p, "jti") is not { } jti || Required(p, "lease_id") is not { } leaseId
            || Time(p, "iat") is not { } iat || Time(p, "nbf") is not { } nbf || Time(p, "exp") is not { } exp
            || !Optional(p, "task_id", out var taskId) || !Optional(p, "owner", out var owner))
        {
            return null;
        }

        return new ValidatedToken
        {
            Issuer = iss, Subject = sub, ActorSubject = actor, Audience = aud, ClientId = clientId,
            Scopes = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal),
            TokenId = jti, IssuedAt = iat, NotBefore = nbf, ExpiresAt = exp, LeaseId = leaseId,
            TaskId = taskId, Owner = owner, CertificateThumbprint = bound, KeyThumbprint = jkt, DelegatedBy = delegatedBy, ParentLeaseIds = parents,
        };
    }

    private static string? Required(JsonElement p, string name) => StrictJson.GetString(p, name) is { Length: > 0 } value ? value : null;

    private static bool Optional(JsonElement p, string name, out string? value)
    {
        value = null;
        if (!p.TryGetProperty(name, out var element))
        {
            return true;
        }

        value = element.ValueKind == JsonValueKind.String ? element.GetString() : null;
        return value is not null;
    }

    private static DateTimeOffset? Time(JsonElement p, string name) =>
        p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var seconds)
            && seconds is >= 0 and <= 253402300799
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    private sealed record ParsedJws(string Kid, byte[] SigningInput, byte[] Payload, byte[] Signature);
}
