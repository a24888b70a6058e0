using Microsoft.AspNetCore.Authentication;

namespace CredBroker.Validation.AspNetCore;

/// <summary>
/// One CredBroker authentication scheme: which broker it trusts, which audience this API is, where the
/// signing keys and revocations come from, and the limits. Named options per scheme, checked at start
/// (a bad setting stops the host with a message naming it); bindable from configuration
/// (<c>AddCredBroker(configuration.GetSection("CredBroker"))</c>): every setting except
/// <see cref="RevocationFeed"/> and <see cref="JwksFetcher"/> is a plain value. Read once, when the
/// scheme is first used: a later configuration reload does not change a running scheme.
/// </summary>
public sealed class CredBrokerOptions : AuthenticationSchemeOptions
{
    /// <summary>The broker's issuer URL (required); the token's <c>iss</c> must equal it exactly (no trailing-slash or case normalisation).</summary>
    public string? Issuer { get; set; }

    /// <summary>This API's audience (required); the token's <c>aud</c> must be one string equal to it.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// The broker's JWKS document. Default: <see cref="Issuer"/> + <c>/.well-known/jwks.json</c>.
    /// Fetched with the <see cref="System.Net.Http.IHttpClientFactory"/> client named
    /// <see cref="CredBrokerDefaults.HttpClientName"/> (configure it for a private CA or a proxy).
    /// </summary>
    public Uri? JwksUri { get; set; }

    /// <summary>An https <see cref="JwksUri"/> is required unless it is a loopback address; default true. Turn off only for tests.</summary>
    public bool RequireHttpsJwksUri { get; set; } = true;

    /// <summary>Fetches the JWKS document some other way (e.g. gRPC <c>GetSigningKeys</c>); replaces <see cref="JwksUri"/> when set.</summary>
    public Func<CancellationToken, Task<string>>? JwksFetcher { get; set; }

    /// <summary>How often the background service refreshes the keys; default 5 minutes. A failed fetch is retried sooner (0.5 s doubling to 10 s).</summary>
    public TimeSpan JwksRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>An unknown kid triggers at most one extra fetch per this interval; default 30 s (<see cref="JwksCache.MinRefreshInterval"/>).</summary>
    public TimeSpan JwksMinRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Keys older than this fail every token closed (<c>jwks_stale</c>); default 1 hour (<see cref="JwksCache.MaxStaleness"/>).</summary>
    public TimeSpan JwksMaxStaleness { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long one JWKS fetch may take; default 10 s.</summary>
    public TimeSpan JwksFetchTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where revocations come from, usually the broker's <c>WatchRevocations</c> stream
    /// (<c>new BrokerRevocationFeed(client)</c> from CredBroker.Client). Required unless
    /// <see cref="RequireRevocationFeed"/> is false: without it a completed or revoked task's tokens stay valid until they expire.
    /// </summary>
    public IRevocationFeed? RevocationFeed { get; set; }

    /// <summary>Refuse to start without a <see cref="RevocationFeed"/>; default true.</summary>
    public bool RequireRevocationFeed { get; set; } = true;

    /// <summary>
    /// The grace period: how long the feed may be silent (it sends a heartbeat every 5 s) before every
    /// token is refused (<c>revocation_unavailable</c>) and the health check turns Unhealthy; default 30 s.
    /// </summary>
    public TimeSpan RevocationMaxOutage { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Past <see cref="RevocationMaxOutage"/>, keep accepting tokens on the last known revocations instead of refusing them; default false.</summary>
    public bool RevocationFailOpen { get; set; }

    /// <summary>
    /// Accept tokens before the revocation feed has caught up (its first heartbeat after start, or after
    /// a resync); default false: until then every token is refused (<c>revocations_not_synced</c>).
    /// </summary>
    public bool RevocationAcceptBeforeCaughtUp { get; set; }

    /// <summary>Tolerance for clock differences with the broker; default 60 s, at most 5 minutes.</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The longest accepted <c>exp</c> - <c>iat</c>; default 1 hour.</summary>
    public TimeSpan MaxTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The longest accepted token, in characters; default 8 KiB.</summary>
    public int MaxTokenSize { get; set; } = 8 * 1024;

    /// <summary>
    /// DPoP proofs (RFC 9449) with <c>Authorization: DPoP</c>: the <c>iat</c> window (<see cref="DpopProofOptions.MaxAge"/>
    /// back, <see cref="DpopProofOptions.MaxFuture"/> ahead), the largest proof and the accepted algorithms.
    /// </summary>
    public DpopProofOptions Dpop { get; set; } = new();

    /// <summary>
    /// The scheme and authority callers use to reach this API (e.g. <c>https://api.example</c>), for the
    /// <c>htu</c> check behind a reverse proxy or load balancer that changes them. Default: the request's
    /// own scheme and host. The path always comes from the request (PathBase + Path).
    /// </summary>
    public Uri? DpopPublicOrigin { get; set; }

    /// <summary>Live proof <c>jti</c>s remembered (per scheme, in memory); when full, new proofs are refused. Default 100,000.</summary>
    public int DpopReplayCacheSize { get; set; } = 100_000;

    /// <summary>The JWKS location in effect: <see cref="JwksUri"/>, else derived from an http(s) <see cref="Issuer"/>; null when neither gives one.</summary>
    public Uri? ResolveJwksUri() =>
        JwksUri ?? (Uri.TryCreate(Issuer?.TrimEnd('/') + "/.well-known/jwks.json", UriKind.Absolute, out var derived)
            && (derived.Scheme == Uri.UriSchemeHttps || derived.Scheme == Uri.UriSchemeHttp) ? derived : null);
}
