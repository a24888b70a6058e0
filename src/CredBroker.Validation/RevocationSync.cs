namespace CredBroker.Validation;

/// <summary>How <see cref="RevocationSync"/> behaves when the feed is away.</summary>
public sealed record RevocationSyncOptions
{
    /// <summary>How long without any message (events or heartbeats, sent every 5 s) before the feed counts as down.</summary>
    public TimeSpan MaxOutage { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>When the feed is down: refuse every token (false, the default) or keep validating with the last known state.</summary>
    public bool FailOpen { get; init; }

    /// <summary>First pause before reconnecting a broken stream; doubles up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest pause between reconnects.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Validate tokens before the feed has caught up (an empty deny list right after start counts as
    /// complete). Default false: until the feed's first heartbeat — and again while replaying after an
    /// expired cursor — tokens are refused with <see cref="TokenErrors.RevocationsNotSynced"/>, because a
    /// token revoked a moment ago would otherwise pass. Only for deployments that accept that window.
    /// </summary>
    public bool AcceptBeforeCaughtUp { get; init; }
}

/// <summary>
/// Keeps a <see cref="DenyList"/> in step with the broker's revocation feed: applies every notice,
/// remembers the cursor and resumes after it when the stream breaks (so nothing is missed), starts
/// over when the broker says the cursor expired, and prunes entries that can no longer matter.
/// As an <see cref="IRevocationState"/> it is unavailable (fail closed) once the feed has been
/// silent longer than <see cref="RevocationSyncOptions.MaxOutage"/>, unless configured to fail open,
/// and not synced (tokens refused with <see cref="TokenErrors.RevocationsNotSynced"/>) until it has caught up.
/// <see cref="IsCaughtUp"/> and <see cref="IsConnected"/> say whether it is ready (a readiness probe's question).
/// </summary>
public sealed class RevocationSync(IRevocationFeed feed, DenyList denyList, TimeProvider time, RevocationSyncOptions? options = null) : IRevocationState
{
    private readonly RevocationSyncOptions _options = options ?? new RevocationSyncOptions();
    private long _lastContactTicks = time.GetUtcNow().UtcTicks;
    private long _currentAsOfTicks = DateTimeOffset.MinValue.UtcTicks;
    private volatile string _cursor = string.Empty;
    private long _applied;
    private volatile bool _caughtUp;
    private volatile bool _connected;

    /// <summary>Where the next resume starts ("" before the first notice).</summary>
    public string Cursor => _cursor;

    /// <summary>Notices applied (heartbeats excluded).</summary>
    public long Applied => Interlocked.Read(ref _applied);

    /// <summary>True while the feed has spoken within <see cref="RevocationSyncOptions.MaxOutage"/>.</summary>
    public bool IsHealthy =>
        time.GetUtcNow().UtcTicks - Interlocked.Read(ref _lastContactTicks) <= _options.MaxOutage.Ticks;

    /// <summary>
    /// True once the feed has sent a heartbeat, which it does only when it has nothing more to send:
    /// every retained revocation has been applied. False again while replaying after an expired cursor.
    /// </summary>
    public bool IsCaughtUp => _caughtUp;

    /// <summary>True while a stream is open and has delivered at least one message; false before that and after it breaks.</summary>
    public bool IsConnected => _connected;

    /// <summary>
    /// The time of the last heartbeat (the broker's clock): every revocation the broker had acknowledged before it has
    /// been applied here. <see cref="DateTimeOffset.MinValue"/> before the first heartbeat.
    /// </summary>
    public DateTimeOffset CurrentAsOf => new(Interlocked.Read(ref _currentAsOfTicks), TimeSpan.Zero);

    /// <summary>When the feed last sent anything (a notice or a heartbeat); the start time before that.</summary>
    public DateTimeOffset LastContact => new(Interlocked.Read(ref _lastContactTicks), TimeSpan.Zero);

    /// <summary>The longest silence tolerated before <see cref="IsHealthy"/> turns false.</summary>
    public TimeSpan MaxOutage => _options.MaxOutage;

    /// <inheritdoc />
    public bool IsAvailable => _options.FailOpen || IsHealthy;

    /// <inheritdoc />
    /// <remarks>True once caught up (<see cref="IsCaughtUp"/>), or always with <see cref="RevocationSyncOptions.AcceptBeforeCaughtUp"/>.</remarks>
    public bool IsSynced => _options.AcceptBeforeCaughtUp || _caughtUp;

    /// <inheritdoc />
    public bool IsRevoked(string leaseId, string agentId, DateTimeOffset issuedAt) => denyList.IsRevoked(leaseId, agentId, issuedAt);

    /// <summary>Follows the feed until cancelled; never throws for a broken stream (it reconnects with backoff).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = _options.MinBackoff;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var notice in feed.WatchAsync(_cursor, cancellationToken))
                {
                    _connected = true;
                    Apply(notice);
                    backoff = _options.MinBackoff;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                _connected = false;
                return;
            }
            catch (RevocationCursorExpiredException)
            {
                // Events after our cursor were dropped: replay everything the broker still holds.
                _connected = false;
                _caughtUp = false;
                _cursor = string.Empty;
                continue;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The stream broke (broker restart, network): resume from the cursor after a pause.
            }

            _connected = false;

            try
            {
                await Task.Delay(backoff, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
        }
    }

    private void Apply(RevocationNotice notice)
    {
        var now = time.GetUtcNow();
        Interlocked.Exchange(ref _lastContactTicks, now.UtcTicks);
        switch (notice.Kind)
        {
            case "lease" when notice.LeaseId is { Length: > 0 } leaseId:
                denyList.RevokeLease(leaseId, notice.NotAfter);
                Interlocked.Increment(ref _applied);
                break;
            case "agent" when notice.AgentId is { Length: > 0 } agentId:
                denyList.QuarantineAgent(agentId, notice.NotAfter);
                Interlocked.Increment(ref _applied);
                break;
            case "heartbeat":
                denyList.Prune(now);
                _caughtUp = true;
                Interlocked.Exchange(ref _currentAsOfTicks, notice.NotAfter.UtcTicks);
                break;
        }

        _cursor = notice.Cursor;
    }
}
