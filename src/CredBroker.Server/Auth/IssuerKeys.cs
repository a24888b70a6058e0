using CredBroker.Server.Rpc;
using Grpc.Core;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Auth;

/// <summary>
/// A trusted issuer's public keys: a JWKS file read at start, or a JWKS URL fetched on first use,
/// refreshed in the background every <see cref="RefreshInterval"/> and at once (at most every
/// <see cref="MinRefreshInterval"/>) when a credential names an unknown kid — the issuer rotated.
/// A failed refresh keeps the last good keys.
/// </summary>
public sealed class IssuerKeys
{
    public const int MaxJwksBytes = 256 * 1024;

    private readonly Func<CancellationToken, Task<string>>? _fetch;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private volatile IReadOnlyList<SecurityKey>? _keys;
    private DateTimeOffset _fetchedAt;
    private DateTimeOffset _lastAttempt = DateTimeOffset.MinValue;
    private Task? _refreshing;

    private IssuerKeys(IReadOnlyList<SecurityKey>? keys, Func<CancellationToken, Task<string>>? fetch, TimeProvider time)
    {
        _keys = keys;
        _fetch = fetch;
        _time = time;
        _fetchedAt = time.GetUtcNow();
    }

    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromMinutes(5);

    public TimeSpan MinRefreshInterval { get; init; } = TimeSpan.FromSeconds(30);

    public IReadOnlyList<SecurityKey> Current => _keys ?? [];

    public static IssuerKeys FromFile(string path, TimeProvider time) => new(Parse(File.ReadAllText(path), path), null, time);

    /// <summary>Keys from <paramref name="uri"/> (https, or http on loopback only).</summary>
    public static IssuerKeys FromUri(Uri uri, HttpClient http, TimeSpan refreshInterval, TimeProvider time)
    {
        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback))
        {
            throw new InvalidOperationException($"JwksUri '{uri}' must be https (plain http is accepted on loopback only).");
        }

        return new IssuerKeys(null, async ct =>
        {
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new InvalidDataException($"{uri}: JWKS larger than {MaxJwksBytes} bytes.");
            }

            var body = await response.Content.ReadAsStringAsync(ct);
            return body.Length <= MaxJwksBytes ? body : throw new InvalidDataException($"{uri}: JWKS larger than {MaxJwksBytes} bytes.");
        }, time)
        { RefreshInterval = refreshInterval };
    }

    /// <summary>
    /// Makes sure keys are loaded and, when <paramref name="kid"/> is unknown, tries one (rate-limited)
    /// refresh. Throws UNAVAILABLE when the issuer's keys were never fetched.
    /// </summary>
    public async Task EnsureAsync(string? kid, CancellationToken cancellationToken)
    {
        if (_fetch is null)
        {
            return;
        }

        var now = _time.GetUtcNow();
        var known = _keys is { } keys && (string.IsNullOrEmpty(kid) || keys.Any(k => k.KeyId == kid));
        if (_keys is null || (!known && now - _lastAttempt >= MinRefreshInterval))
        {
            try
            {
                await Refresh(countsTowardLimit: _keys is not null).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            }
            catch (TimeoutException)
            {
                // Answered below from whatever keys there are.
            }
        }
        else if (now - _fetchedAt >= RefreshInterval)
        {
            _ = Refresh(countsTowardLimit: true);
        }

        if (_keys is null)
        {
            throw RpcErrors.Create(StatusCode.Unavailable, "The credential issuer's keys (JwksUri) could not be fetched yet; retry shortly.");
        }
    }

    /// <param name="countsTowardLimit">False for the first load, so a rotation right after start is still picked up at once.</param>
    private Task Refresh(bool countsTowardLimit)
    {
        lock (_gate)
        {
            if (_refreshing is { IsCompleted: false } running)
            {
                return running;
            }

            if (countsTowardLimit)
            {
                _lastAttempt = _time.GetUtcNow();
            }

            return _refreshing = Task.Run(async () =>
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    _keys = Parse(await _fetch!(timeout.Token), "JwksUri");
                    _fetchedAt = _time.GetUtcNow();
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or InvalidDataException or ArgumentException or InvalidOperationException)
                {
                    // Keep the last good keys; the next unknown kid or interval retries.
                }
            });
        }
    }

    private static IReadOnlyList<SecurityKey> Parse(string json, string source)
    {
        try
        {
            return new JsonWebKeySet(json).GetSigningKeys().ToList();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{source}: not a JWKS document ({e.Message}).", e);
        }
    }
}
