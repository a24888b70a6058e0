using System.Diagnostics;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// One clock for every replica: this host's clock corrected by its measured offset from Redis's
/// <c>TIME</c> (the node that serves the key schedule's slot, so every replica asks the same one).
/// Lease deadlines, sweeps, token <c>iat</c>/<c>exp</c> and introspection all read the broker's
/// <see cref="TimeProvider"/>; with this one, a replica whose own clock runs seconds ahead or behind
/// decides exactly as the others do. The error left is bounded by half the round trip of the last
/// sample (<see cref="Uncertainty"/>) plus the drift between samples; docs/reliability.md states the bound.
/// While Redis cannot be asked, the last offset is kept.
/// </summary>
public sealed class RedisClock : TimeProvider, IDisposable
{
    /// <summary>Samples whose round trip is longer than this are not used (a congested link says little about the offset).</summary>
    public static readonly TimeSpan MaxSampleRoundTrip = TimeSpan.FromMilliseconds(200);

    private static readonly RedisKey Anchor = "cb:signing:schedule";
    private readonly RedisMultiplexer _connection;
    private readonly bool _ownsConnection;
    private readonly TimeProvider _local;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string>? _onProblem;
    private readonly Task _sampling;
    private volatile bool _hostClockOnly;
    private long _offsetTicks;
    private long _uncertaintyTicks = TimeSpan.FromDays(1).Ticks;
    private string? _lastProblem;

    private RedisClock(RedisMultiplexer connection, bool ownsConnection, TimeProvider local, TimeSpan interval, Action<string>? onProblem)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
        _local = local;
        _onProblem = onProblem;
        // Sampling starts at once and never blocks the caller (a blocked start-up thread starves the thread pool
        // the Redis client itself needs): until the first sample succeeds the host's own clock is used and
        // the broker reports itself not ready (IsSynced).
        _sampling = SampleLoopAsync(interval, _stop.Token);
    }

    /// <summary>One sampling loop (never overlapping calls): every 200 ms until a first sample succeeded, then every interval.</summary>
    private async Task SampleLoopAsync(TimeSpan interval, CancellationToken stop)
    {
        await Task.Yield();
        var attempts = 0;
        while (!stop.IsCancellationRequested)
        {
            // Quiet while the connection is still coming up (the first 5 s); after that every problem is reported once.
            await SampleAsync(quiet: !IsSynced && ++attempts < 25);
            try
            {
                await Task.Delay(IsSynced ? interval : TimeSpan.FromMilliseconds(200), stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Connects (without failing when Redis is down: the offset stays 0 until a sample succeeds), takes a
    /// first sample, and re-samples every <paramref name="interval"/>.
    /// </summary>
    public static RedisClock Connect(string configuration, RedisConnectionOptions? connection, TimeSpan interval, Action<string>? onProblem = null, TimeProvider? local = null) =>
        new(RedisMultiplexer.Connect((connection ?? new RedisConnectionOptions()).Configure(configuration)), true, local ?? System, interval, onProblem);

    /// <summary>A clock sampling on an existing connection (not disposed with the clock).</summary>
    internal static RedisClock On(RedisMultiplexer connection, TimeSpan interval, Action<string>? onProblem) =>
        new(connection, false, System, interval, onProblem);

    /// <summary>Redis time minus this host's time, as last measured.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    /// <summary>
    /// True once a good sample (round trip at most <see cref="MaxSampleRoundTrip"/>) succeeded, or when the Redis
    /// ACL does not permit TIME (then this host's clock is used, with a warning): until then the broker is not ready.
    /// </summary>
    public bool IsSynced => _hostClockOnly || Uncertainty <= MaxSampleRoundTrip / 2;

    /// <summary>
    /// Waits (blocking, up to <paramref name="timeout"/>) for the first good sample, so what starts next (the key
    /// schedule, the sweeper) already reads the corrected clock; false when it did not come in time.
    /// </summary>
    public bool WaitUntilSynced(TimeSpan timeout)
    {
        var started = Stopwatch.GetTimestamp();
        while (!IsSynced && Stopwatch.GetElapsedTime(started) < timeout)
        {
            Thread.Sleep(20);
        }

        return IsSynced;
    }

    /// <summary>The Redis user may not run TIME (-NOPERM): the host's clock is used as before (add <c>+time</c> to the ACL).</summary>
    public bool HostClockOnly => _hostClockOnly;

    /// <summary>How far <see cref="GetUtcNow"/> may be from Redis's clock: half the round trip of the last sample used.</summary>
    public TimeSpan Uncertainty => TimeSpan.FromTicks(Interlocked.Read(ref _uncertaintyTicks));

    public override DateTimeOffset GetUtcNow() => _local.GetUtcNow() + Offset;

    public override long GetTimestamp() => _local.GetTimestamp();

    public override long TimestampFrequency => _local.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => _local.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        _local.CreateTimer(callback, state, dueTime, period);

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _sampling.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
        if (_ownsConnection)
        {
            _connection.Dispose();
        }
    }

    /// <summary>One sample; false when it could not be used (<paramref name="quiet"/>: do not report that).</summary>
    private async Task<bool> SampleAsync(bool quiet)
    {
        try
        {
            var started = Stopwatch.GetTimestamp();
            var before = _local.GetUtcNow();
            var redisNow = await ReadTimeAsync();
            var roundTrip = Stopwatch.GetElapsedTime(started);
            // A slow sample is still used when it is better than what is known (e.g. the first one).
            if (roundTrip > MaxSampleRoundTrip && roundTrip / 2 >= Uncertainty)
            {
                if (!quiet)
                {
                    Report($"clock samples skipped: Redis TIME answers slower than {MaxSampleRoundTrip.TotalMilliseconds:0} ms (the last offset is kept)");
                }

                return false;
            }

            var local = before + (roundTrip / 2);
            Interlocked.Exchange(ref _offsetTicks, (new DateTimeOffset(DateTime.SpecifyKind(redisNow, DateTimeKind.Utc)) - local).Ticks);
            Interlocked.Exchange(ref _uncertaintyTicks, (roundTrip / 2).Ticks);
            if (roundTrip <= MaxSampleRoundTrip)
            {
                _lastProblem = null;
                _hostClockOnly = false;
            }

            return true;
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOPERM", StringComparison.Ordinal))
        {
            _hostClockOnly = true;
            Report("the Redis user may not run TIME (add +time to its ACL): this host's own clock decides lease deadlines");
            return false;
        }
        catch (Exception e) when (RedisFaults.IsUnavailable(e) || e is RedisException or InvalidOperationException or NotSupportedException)
        {
            if (!quiet)
            {
                Report("Redis TIME could not be read; keeping the last clock offset: " + e.GetType().Name + ": " + e.Message.Split(',')[0]);
            }

            return false;
        }
    }

    /// <summary>
    /// TIME of the node serving the anchor key's slot (on a cluster every replica asks the same master);
    /// through Sentinel, or wherever no server can be picked by key, TIME of the primary the database uses.
    /// </summary>
    private async Task<DateTime> ReadTimeAsync()
    {
        if (IsCluster())
        {
            return await _connection.Current.GetServer(Anchor).TimeAsync();
        }

        var reply = (RedisResult[])(await _connection.Current.GetDatabase().ExecuteAsync("TIME"))!;
        return DateTime.UnixEpoch.AddSeconds((long)reply[0]).AddTicks((long)reply[1] * 10);
    }

    private bool IsCluster() => _connection.Current.GetServers().Any(s => s.ServerType == ServerType.Cluster);

    private void Report(string problem)
    {
        if (problem != _lastProblem)
        {
            _lastProblem = problem;
            _onProblem?.Invoke(problem);
        }
    }
}
