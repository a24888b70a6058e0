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

    private static readonly TimeSpan StartBudget = TimeSpan.FromSeconds(3);
    private static readonly RedisKey Anchor = "cb:signing:schedule";
    private readonly ConnectionMultiplexer _connection;
    private readonly bool _ownsConnection;
    private readonly TimeProvider _local;
    private readonly Timer _timer;
    private readonly Action<string>? _onProblem;
    private long _offsetTicks;
    private long _uncertaintyTicks = TimeSpan.FromDays(1).Ticks;
    private string? _lastProblem;

    private RedisClock(ConnectionMultiplexer connection, bool ownsConnection, TimeProvider local, TimeSpan interval, Action<string>? onProblem)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
        _local = local;
        _onProblem = onProblem;
        // The first samples warm the connection (the very first TIME pays for the handshake): quick tries
        // for up to about the connect timeout, so the clock is corrected before anything reads it.
        var started = Stopwatch.GetTimestamp();
        var first = true;
        while (!(Sample(quiet: true) && Uncertainty < MaxSampleRoundTrip / 2) && Stopwatch.GetElapsedTime(started) < StartBudget)
        {
            first = false;
            Thread.Sleep(50);
        }

        if (!first && Uncertainty >= MaxSampleRoundTrip / 2)
        {
            Report(Uncertainty >= TimeSpan.FromHours(1)
                ? "Redis TIME could not be read at start; this host's clock is used until it can"
                : $"the clock offset is known only within {Uncertainty.TotalMilliseconds:0} ms (slow Redis TIME); sampling again every interval");
        }

        _timer = new Timer(_ => Sample(quiet: false), null, interval, interval);
    }

    /// <summary>
    /// Connects (without failing when Redis is down: the offset stays 0 until a sample succeeds), takes a
    /// first sample, and re-samples every <paramref name="interval"/>.
    /// </summary>
    public static RedisClock Connect(string configuration, RedisConnectionOptions? connection, TimeSpan interval, Action<string>? onProblem = null, TimeProvider? local = null) =>
        new(ConnectionMultiplexer.Connect((connection ?? new RedisConnectionOptions()).Configure(configuration)), true, local ?? System, interval, onProblem);

    /// <summary>Redis time minus this host's time, as last measured.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

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
        _timer.Dispose();
        if (_ownsConnection)
        {
            _connection.Dispose();
        }
    }

    /// <summary>One sample; false when it could not be used (<paramref name="quiet"/>: do not report that).</summary>
    private bool Sample(bool quiet)
    {
        try
        {
            var server = _connection.GetServer(Anchor);
            var started = Stopwatch.GetTimestamp();
            var before = _local.GetUtcNow();
            var redisNow = server.Time();
            var roundTrip = Stopwatch.GetElapsedTime(started);
            // A slow sample is still used when it is better than what is known (e.g. the first one).
            if (roundTrip > MaxSampleRoundTrip && roundTrip / 2 >= Uncertainty)
            {
                if (!quiet)
                {
                    Report($"clock sample skipped: Redis TIME took {roundTrip.TotalMilliseconds:0} ms");
                }

                return false;
            }

            var local = before + (roundTrip / 2);
            Interlocked.Exchange(ref _offsetTicks, (new DateTimeOffset(DateTime.SpecifyKind(redisNow, DateTimeKind.Utc)) - local).Ticks);
            Interlocked.Exchange(ref _uncertaintyTicks, (roundTrip / 2).Ticks);
            if (roundTrip <= MaxSampleRoundTrip)
            {
                _lastProblem = null;
            }

            return true;
        }
        catch (Exception e) when (RedisFaults.IsUnavailable(e) || e is RedisException or InvalidOperationException or NotSupportedException)
        {
            if (!quiet)
            {
                Report("Redis TIME could not be read; keeping the last clock offset: " + e.GetType().Name);
            }

            return false;
        }
    }

    private void Report(string problem)
    {
        if (problem != _lastProblem)
        {
            _lastProblem = problem;
            _onProblem?.Invoke(problem);
        }
    }
}
