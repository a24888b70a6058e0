using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// One Redis connection of a store or the clock: a <see cref="ConnectionMultiplexer"/> that is replaced while,
/// through Sentinel, it has never connected. StackExchange.Redis (3.4.35) reconnects a lost node by itself and,
/// with <c>AbortOnConnectFail=false</c>, keeps trying a standalone or cluster node that was down at start; but a
/// Sentinel-managed multiplexer whose first connection to the primary failed ("Sentinel: Failed connecting to
/// configured primary for service", e.g. the connect timeout passed on a loaded host) can stay disconnected for
/// good (docs/reliability.md). So while a Sentinel-managed multiplexer is not connected and never was, a new one
/// is made every <see cref="RetryInterval"/> and takes its place; once one has connected, the client follows
/// failovers itself and this does nothing more. Every store asks <see cref="Current"/> per call.
/// </summary>
public sealed class RedisMultiplexer : IDisposable
{
    /// <summary>How often a Sentinel-managed multiplexer that never connected is replaced.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(3);

    private readonly ConfigurationOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _healing;
    private readonly object _gate = new();
    private ConnectionMultiplexer _current;
    private int _replacements;
    private bool _disposed;
    private readonly bool _mayHaveTwoPrimaries;

    private RedisMultiplexer(ConfigurationOptions options, ConnectionMultiplexer first)
    {
        _options = options;
        _current = first;
        _mayHaveTwoPrimaries = options.ServiceName is { Length: > 0 } || options.EndPoints.Count > 1;
        _healing = options.ServiceName is { Length: > 0 } ? HealAsync(_stop.Token) : Task.CompletedTask;
    }

    /// <summary>Connects (never failing because Redis is away: calls fail closed until it answers).</summary>
    public static RedisMultiplexer Connect(ConfigurationOptions options)
    {
        if (options.ServiceName is { Length: > 0 })
        {
            RaiseThreadPoolMinimum();
        }

        return new(options, ConnectionMultiplexer.Connect(options.Clone()));
    }

    /// <summary>
    /// The fewest thread-pool worker threads a process with a Sentinel-managed connection starts without delay (the
    /// pool's own minimum is the core count). StackExchange.Redis (3.4.35) follows a Sentinel failover with blocking calls
    /// on pool threads: each managed multiplexer whose primary fails runs a 1 s timer whose callback asks the Sentinels for
    /// the primary synchronously (in parallel, on more pool threads) and waits on the reconfiguration; a restored connection
    /// does the same on its event. A broker holds several such multiplexers (lease store, audit log, their WAIT connections,
    /// the clock), so a failover blocks more threads than a 2-core host's minimum, and the pool adds a thread only about
    /// every half second: the whole process stalled for 1-4 s after each failover in the chaos runs (audit appends, sweeps,
    /// calls and clock samples all waiting), and leases due during the failover were recorded expired 1.5-4 s after it
    /// ended. With this floor the blocked callbacks get threads at once. Only ever raised, never lowered.
    /// </summary>
    public const int SentinelMinWorkerThreads = 64;

    private static void RaiseThreadPoolMinimum()
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < SentinelMinWorkerThreads)
        {
            ThreadPool.SetMinThreads(SentinelMinWorkerThreads, completionPorts);
        }
    }

    /// <summary>The multiplexer to use now (ask again on each call: it may have been replaced).</summary>
    public ConnectionMultiplexer Current => Volatile.Read(ref _current);

    /// <summary>
    /// <see cref="Current"/>, failing closed (<see cref="RedisPrimaryGuard"/>) while it sees two primaries. Only a
    /// configuration that can see two (Sentinel, or several endpoints) pays for the scan of its servers; one endpoint of a
    /// standalone server or of a cluster cannot.
    /// </summary>
    public ConnectionMultiplexer Primary => _mayHaveTwoPrimaries ? RedisPrimaryGuard.SinglePrimary(Current) : Current;

    /// <summary>How many times a multiplexer that never connected was replaced.</summary>
    public int Replacements => Volatile.Read(ref _replacements);

    private async Task HealAsync(CancellationToken stop)
    {
        while (!Current.IsConnected)
        {
            try
            {
                await Task.Delay(RetryInterval, stop).ConfigureAwait(false);
                if (Current.IsConnected)
                {
                    return;
                }

                var next = await ConnectionMultiplexer.ConnectAsync(_options.Clone()).ConfigureAwait(false);
                ConnectionMultiplexer old;
                lock (_gate)
                {
                    if (_disposed)
                    {
                        next.Dispose();
                        return;
                    }

                    old = _current;
                    Volatile.Write(ref _current, next);
                }

                Interlocked.Increment(ref _replacements);
                // Nothing has ever been answered on the old one; calls still holding it fail closed (ObjectDisposedException
                // is "unavailable", RedisFaults) and their retries use the new one.
                old.Dispose();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
            {
                // The next round tries again.
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _stop.Cancel();
        try
        {
            _healing.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
        _current.Dispose();
    }
}
