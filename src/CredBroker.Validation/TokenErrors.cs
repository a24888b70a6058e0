namespace CredBroker.Validation;

/// <summary>The reason codes in <see cref="TokenValidationResult.Error"/>. Stable strings, safe to log and to count.</summary>
public static class TokenErrors
{
    /// <summary>Longer than <see cref="TokenValidationOptions.MaxTokenSize"/>.</summary>
    public const string Size = "size";

    /// <summary>Not a compact JWS of three strict base64url parts with JSON object header and payload (a JWE has five parts).</summary>
    public const string Malformed = "malformed";

    /// <summary>A JSON member name appears twice in the header, the payload or a nested object.</summary>
    public const string DuplicateMember = "duplicate_member";

    /// <summary>The header has a member other than <c>typ</c>, <c>alg</c> and <c>kid</c> (e.g. <c>jku</c>, <c>x5u</c>, <c>jwk</c>, <c>x5c</c>, <c>crit</c>).</summary>
    public const string Header = "header";

    /// <summary><c>typ</c> is missing or not exactly <c>at+jwt</c>.</summary>
    public const string Type = "typ";

    /// <summary><c>alg</c> is missing or not exactly <c>ES256</c>.</summary>
    public const string Algorithm = "alg";

    /// <summary><c>kid</c> is missing or not a non-empty string.</summary>
    public const string KeyId = "kid";

    /// <summary>No key with the token's <c>kid</c> in the key set (after a refresh, when validating asynchronously).</summary>
    public const string UnknownKey = "unknown_kid";

    /// <summary>The JWKS was never loaded or its last successful fetch is older than <see cref="JwksCache.MaxStaleness"/>: fail closed.</summary>
    public const string JwksStale = "jwks_stale";

    /// <summary>The ES256 signature does not verify.</summary>
    public const string Signature = "signature";

    /// <summary>A required claim is missing or has the wrong JSON type.</summary>
    public const string Claims = "claims";

    /// <summary><c>iss</c> is not exactly the configured issuer.</summary>
    public const string Issuer = "issuer";

    /// <summary><c>aud</c> is not a single string exactly equal to the configured audience.</summary>
    public const string Audience = "audience";

    /// <summary><c>exp</c> passed (beyond the clock skew).</summary>
    public const string Expired = "expired";

    /// <summary><c>nbf</c> is in the future (beyond the clock skew).</summary>
    public const string NotYetValid = "not_yet_valid";

    /// <summary><c>iat</c> is in the future (beyond the clock skew).</summary>
    public const string IssuedInFuture = "issued_in_future";

    /// <summary><c>exp</c> - <c>iat</c> is not positive or exceeds <see cref="TokenValidationOptions.MaxTokenLifetime"/>.</summary>
    public const string Lifetime = "lifetime";

    /// <summary><c>scope</c> is empty or holds a wildcard.</summary>
    public const string Scope = "scope";

    /// <summary>The token is bound to a client certificate (<c>cnf</c>) that the caller did not present, or <c>cnf</c> is not understood.</summary>
    public const string Confirmation = "cnf";

    /// <summary>The revocation state says the lease was revoked or the agent quarantined.</summary>
    public const string Revoked = "revoked";

    /// <summary>The revocation feed has been unreachable longer than allowed and the validator fails closed.</summary>
    public const string RevocationUnavailable = "revocation_unavailable";

    /// <summary>
    /// The revocation state has not caught up with the feed yet (right after start, or while replaying
    /// after an expired cursor): an empty deny list proves nothing until the broker's first heartbeat
    /// says every retained revocation was delivered. Opt out with
    /// <see cref="RevocationSyncOptions.AcceptBeforeCaughtUp"/>.
    /// </summary>
    public const string RevocationsNotSynced = "revocations_not_synced";
}
