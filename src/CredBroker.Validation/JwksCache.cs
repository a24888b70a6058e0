namespace CredBroker.Validation;

/// <summary>
/// The broker's signing keys, fetched through a caller-supplied function (HTTP
/// <c>/.well-known/jwks.json</c> or gRPC <c>GetSigningKeys</c>) and refreshed in the background and
/// on demand when a token names an unknown kid (key rotation). A failed fetch keeps the last good
/// set; a set older than <see cref="MaxStaleness"/> is stale and validation fails closed.
/// </summary>
public sealed class JwksCache
{
    private readonly Func<CancellationToken, Task<string>> _fetchJwks;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Task<bool>? _refreshing;
    private DateTimeOffset? _lastAttempt;
    private volatile Snapshot? _snapshot;

    /// <param name="fetchJwks">Returns the JWKS document; may throw on failure.</param>
    /// <param name="time">The clock for refresh pacing and staleness; the system clock by default.</param>
    public JwksCache(Func<CancellationToken, Task<string>> fetchJwks, TimeProvider? time = null)
    {
        _fetchJwks = fetchJwks ?? throw new ArgumentNullException(nameof(fetchJwks));
        _time = time ?? TimeProvider.System;
    }

    /// <summary>An unknown kid triggers at most one fetch per interval (a storm of forged kids cannot flood the broker); default 30 s.</summary>
    public TimeSpan MinRefreshInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How old the last successful fetch may be before the set is stale; default 1 hour.</summary>
    public TimeSpan MaxStaleness { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How long one fetch may take before it counts as failed; default 10 s.</summary>
    public TimeSpan FetchTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The last successfully fetched key set, or null before the first success.</summary>
    public SigningKeySet? Current => _snapshot?.Keys;

    /// <summary>When the last successful fetch completed, or null.</summary>
    public DateTimeOffset? LastSuccess => _snapshot?.FetchedAt;

    /// <summary>Why the last fetch failed, or null when it succeeded.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>True when no fetch ever succeeded or the last success is older than <see cref="MaxStaleness"/>.</summary>
    public bool IsStale(DateTimeOffset now) => _snapshot is not { } s || now - s.FetchedAt > MaxStaleness;

    /// <summary>Fetches the JWKS now (joining a fetch already in flight). True when the set was replaced.</summary>
    public Task<bool> RefreshAsync(CancellationToken cancellationToken = default) =>
        StartRefresh(force: true).WaitAsync(cancellationToken);

    /// <summary>
    /// The key with <paramref name="kid"/>. When it is unknown, or the set is stale, one refresh is
    /// attempted unless another was attempted within <see cref="MinRefreshInterval"/>; concurrent
    /// callers share that refresh.
    /// </summary>
    public async Task<VerificationKey?> FindKeyAsync(string kid, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kid);
        if (Current?.Find(kid) is { } known && !IsStale(_time.GetUtcNow()))
        {
            return known;
        }

        await StartRefresh(force: false).WaitAsync(cancellationToken);
        return Current?.Find(kid);
    }

    /// <summary>Refreshes now and then every <paramref name="interval"/> until cancelled; failures are recorded in <see cref="LastError"/>.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        try
        {
            while (true)
            {
                await RefreshAsync(cancellationToken);
                await Task.Delay(interval, _time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping is the normal way out of the loop.
        }
    }

    private Task<bool> StartRefresh(bool force)
    {
        lock (_gate)
        {
            if (_refreshing is { } inFlight)
            {
                return inFlight;
            }

            var now = _time.GetUtcNow();
            if (!force && _lastAttempt is { } last && now - last < MinRefreshInterval)
            {
                return Task.FromResult(false);
            }

            _lastAttempt = now;
            // The fetch belongs to no single caller: one caller giving up must not fail the others.
            _refreshing = FetchAsync();
            return _refreshing;
        }
    }

    private async Task<bool> FetchAsync()
    {
        await Task.Yield();
        try
        {
            using var timeout = new CancellationTokenSource(FetchTimeout, _time);
            var json = await _fetchJwks(timeout.Token);
            var keys = SigningKeySet.Parse(json);
            _snapshot = new Snapshot(keys, _time.GetUtcNow());
            LastError = null;
            return true;
        }
        catch (Exception e)
        {
            // Keep the last good set: a broker outage must not take the keys away before MaxStaleness.
            LastError = e;
            return false;
        }
        finally
        {
            lock (_gate)
            {
                _refreshing = null;
            }
        }
    }

    private sealed record Snapshot(SigningKeySet Keys, DateTimeOffset FetchedAt);
}
