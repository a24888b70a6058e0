using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace CredBroker.Validation.AspNetCore;

/// <summary>
/// The validation state of one CredBroker scheme: its key cache, deny list, revocation sync and
/// validator, built from the scheme's <see cref="CredBrokerOptions"/>. Schemes share nothing.
/// </summary>
public sealed class CredBrokerScheme
{
    internal CredBrokerScheme(string name, CredBrokerOptions options, Func<CancellationToken, Task<string>> fetchJwks, TimeProvider time)
    {
        Name = name;
        Options = options;
        Keys = new JwksCache(fetchJwks, time)
        {
            MinRefreshInterval = options.JwksMinRefreshInterval,
            MaxStaleness = options.JwksMaxStaleness,
            FetchTimeout = options.JwksFetchTimeout,
        };
        DenyList = new DenyList(options.MaxClockSkew, options.MaxTokenLifetime);
        Revocations = options.RevocationFeed is { } feed
            ? new RevocationSync(feed, DenyList, time, new RevocationSyncOptions
            {
                MaxOutage = options.RevocationMaxOutage, FailOpen = options.RevocationFailOpen, AcceptBeforeCaughtUp = options.RevocationAcceptBeforeCaughtUp,
            })
            : null;
        Validator = new AccessTokenValidator(
            new TokenValidationOptions
            {
                Issuer = options.Issuer!,
                Audience = options.Audience!,
                MaxClockSkew = options.MaxClockSkew,
                MaxTokenLifetime = options.MaxTokenLifetime,
                MaxTokenSize = options.MaxTokenSize,
            },
            Keys,
            Revocations);
        DpopReplay = new DpopReplayCache(options.DpopReplayCacheSize);
    }

    /// <summary>The authentication scheme name.</summary>
    public string Name { get; }

    /// <summary>The validated options the scheme was built from.</summary>
    public CredBrokerOptions Options { get; }

    /// <summary>The broker's signing keys, refreshed by the scheme's background service.</summary>
    public JwksCache Keys { get; }

    /// <summary>Revoked leases and quarantined agents, fed by <see cref="Revocations"/>.</summary>
    public DenyList DenyList { get; }

    /// <summary>Follows the revocation feed (run by the scheme's background service); null without a feed.</summary>
    public RevocationSync? Revocations { get; }

    /// <summary>Validates the scheme's tokens.</summary>
    public AccessTokenValidator Validator { get; }

    /// <summary>The <c>jti</c>s of the DPoP proofs this scheme accepted, until they could no longer be accepted anyway.</summary>
    public DpopReplayCache DpopReplay { get; }
}

/// <summary>Every CredBroker scheme of the application, each built once, on first use, from its named options.</summary>
public sealed class CredBrokerSchemes(IOptionsMonitor<CredBrokerOptions> options, IHttpClientFactory httpClients, TimeProvider time)
{
    /// <summary>The JWKS document may not be larger than this.</summary>
    internal const long MaxJwksBytes = 1024 * 1024;

    private readonly ConcurrentDictionary<string, Lazy<CredBrokerScheme>> _schemes = new(StringComparer.Ordinal);

    /// <summary>The state of <paramref name="scheme"/>; throws <see cref="OptionsValidationException"/> when its options are invalid.</summary>
    public CredBrokerScheme Get(string scheme) =>
        _schemes.GetOrAdd(scheme, name => new Lazy<CredBrokerScheme>(() => Create(name))).Value;

    private CredBrokerScheme Create(string scheme)
    {
        var o = options.Get(scheme);
        var fetch = o.JwksFetcher ?? FetchOverHttp(o.ResolveJwksUri()!);
        return new CredBrokerScheme(scheme, o, fetch, time);
    }

    private Func<CancellationToken, Task<string>> FetchOverHttp(Uri jwks) => async cancellationToken =>
    {
        using var http = httpClients.CreateClient(CredBrokerDefaults.HttpClientName);
        http.MaxResponseContentBufferSize = MaxJwksBytes;
        return await http.GetStringAsync(jwks, cancellationToken);
    };
}
