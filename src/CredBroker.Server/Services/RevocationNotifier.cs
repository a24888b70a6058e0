using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using Microsoft.Extensions.Hosting;

namespace CredBroker.Server.Services;

/// <summary>
/// One poller per broker process watches the tail of the revocation log and wakes every
/// WatchRevocations stream when it moves, so idle watchers cost Redis nothing and a thousand
/// validators do not mean a thousand pollers. Watchers read their own events from their cursor.
/// </summary>
public sealed class RevocationNotifier(ILeaseStore store, TimeSpan pollInterval) : BackgroundService
{
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RevocationCursor? _tail;
    private int _watchers;

    /// <summary>Completes at the next change of the log after this call. Take it before reading, so no change is lost.</summary>
    public Task NextChange => Volatile.Read(ref _changed).Task;

    /// <summary>
    /// Wakes the watchers now: called after this replica appended a revocation, so its own
    /// validators hear of it at once; revocations on other replicas arrive by the poll.
    /// </summary>
    public void Poke()
    {
        if (Volatile.Read(ref _watchers) > 0)
        {
            Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }

    /// <summary>Counts a watcher in for as long as the returned handle lives; with none, nothing is polled.</summary>
    public IDisposable Watch()
    {
        Interlocked.Increment(ref _watchers);
        return new Watcher(this);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(pollInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (Volatile.Read(ref _watchers) == 0)
            {
                _tail = null;
                continue;
            }

            try
            {
                var tail = await store.CurrentRevocationCursorAsync(stoppingToken);
                if (!tail.Equals(_tail))
                {
                    _tail = tail;
                    Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                }
            }
            catch (StoreUnavailableException)
            {
                // Wake the watchers: their own read fails and they report UNAVAILABLE instead of waiting silently.
                Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
    }

    private sealed class Watcher(RevocationNotifier notifier) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref notifier._watchers);
            }
        }
    }
}
