namespace CredBroker.Core.Signals.InMemory;

/// <summary>Dev mode and tests: streams in process memory (lost on restart).</summary>
public sealed class InMemorySsfStreamStore(TimeProvider? time = null) : ISsfStreamStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SsfStream> _streams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Owner, DateTimeOffset Until)> _pushClaims = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public Task<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult<IReadOnlyList<SsfStream>>([.. _streams.Values]);
        }
    }

    public Task<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_streams.GetValueOrDefault(streamId));
        }
    }

    public Task<bool> TrySaveAsync(SsfStream stream, long expectedVersion, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var current = _streams.TryGetValue(stream.StreamId, out var s) ? s.Version : 0;
            if (current != expectedVersion)
            {
                return Task.FromResult(false);
            }

            _streams[stream.StreamId] = stream with { Version = expectedVersion + 1 };
            return Task.FromResult(true);
        }
    }

    public Task<bool> DeleteAsync(string streamId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _pushClaims.Remove(streamId);
            return Task.FromResult(_streams.Remove(streamId));
        }
    }

    public Task<bool> TryClaimPushAsync(string streamId, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_pushClaims.TryGetValue(streamId, out var claim) && claim.Owner != owner && claim.Until > now)
            {
                return Task.FromResult(false);
            }

            _pushClaims[streamId] = (owner, now + ttl);
            return Task.FromResult(true);
        }
    }
}
