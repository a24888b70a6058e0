namespace CredBroker.Core.Tokens;

/// <summary>Where replicas share the key schedule (never private keys).</summary>
public interface IKeyScheduleStore
{
    /// <summary>The stored schedule, or <see cref="KeySchedule.Empty"/> when none was written yet.</summary>
    Task<KeySchedule> GetAsync(CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="schedule"/> only if the stored version is still <paramref name="expectedVersion"/>.</summary>
    Task<bool> TryReplaceAsync(long expectedVersion, KeySchedule schedule, CancellationToken cancellationToken);
}

public sealed class InMemoryKeyScheduleStore : IKeyScheduleStore
{
    private readonly Lock _gate = new();
    private KeySchedule _schedule = KeySchedule.Empty;

    public Task<KeySchedule> GetAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_schedule);
        }
    }

    public Task<bool> TryReplaceAsync(long expectedVersion, KeySchedule schedule, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_schedule.Version != expectedVersion)
            {
                return Task.FromResult(false);
            }

            _schedule = schedule;
            return Task.FromResult(true);
        }
    }
}
