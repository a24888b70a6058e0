namespace CredBroker.Validation;

/// <summary>
/// Why a DPoP proof (RFC 9449) was refused: stable strings, safe to log and to count. The broker
/// sends them upper-cased as the <c>google.rpc.ErrorInfo</c> reason (<c>DPOP_HTU</c>, ...).
/// </summary>
public static class DpopErrors
{
    /// <summary>No proof where one is needed (a DPoP-bound lease or token, or policy requires sender-constrained tokens).</summary>
    public const string Missing = "dpop_missing";

    /// <summary>More than one proof (RFC 9449 §4.3: exactly one).</summary>
    public const string Multiple = "dpop_multiple";

    /// <summary>Longer than <see cref="DpopProofOptions.MaxProofSize"/>.</summary>
    public const string Size = "dpop_size";

    /// <summary>Not a compact JWS of three strict base64url parts with JSON object header and payload, or a duplicate JSON member.</summary>
    public const string Malformed = "dpop_malformed";

    /// <summary>The header has a member other than <c>typ</c>, <c>alg</c>, <c>jwk</c>, or <c>typ</c> is not exactly <c>dpop+jwt</c>.</summary>
    public const string Type = "dpop_typ";

    /// <summary><c>alg</c> is missing, symmetric, <c>none</c>, or not one of <see cref="DpopProofOptions.Algorithms"/>.</summary>
    public const string Algorithm = "dpop_alg";

    /// <summary><c>jwk</c> is missing, carries private members, does not fit <c>alg</c>, or is not a valid public key.</summary>
    public const string Key = "dpop_jwk";

    /// <summary>The signature does not verify with the embedded <c>jwk</c>.</summary>
    public const string Signature = "dpop_signature";

    /// <summary><c>htm</c> is not the request's method.</summary>
    public const string Method = "dpop_htm";

    /// <summary><c>htu</c> is not the URI the request was sent to (scheme, authority and path; query and fragment ignored).</summary>
    public const string Uri = "dpop_htu";

    /// <summary><c>iat</c> is missing, older than <see cref="DpopProofOptions.MaxAge"/> or further ahead than <see cref="DpopProofOptions.MaxFuture"/>.</summary>
    public const string IssuedAt = "dpop_iat";

    /// <summary><c>jti</c> is missing, empty or longer than 256 characters.</summary>
    public const string TokenId = "dpop_jti";

    /// <summary><c>ath</c> is missing or not the hash of the access token presented with the proof.</summary>
    public const string AccessTokenHash = "dpop_ath";

    /// <summary>The proof's <c>jti</c> was seen already for this key within its lifetime.</summary>
    public const string Replay = "dpop_replay";

    /// <summary>The proof's key is not the key the lease or token is bound to (<c>cnf.jkt</c>), or the token is not DPoP-bound.</summary>
    public const string Binding = "dpop_binding";

    /// <summary>The replay cache is full of live entries; the proof is refused rather than checked less.</summary>
    public const string ReplayCacheFull = "dpop_replay_cache_full";
}
