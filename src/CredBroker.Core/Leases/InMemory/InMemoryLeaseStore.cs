namespace CredBroker.Core.Leases.InMemory;

/// <summary>
/// The lease store for dev mode and unit tests. One lock makes every operation atomic; it passes
/// the same contract suite as the Redis store. Not shared between processes, so not for production.
/// </summary>
public sealed class InMemoryLeaseStore : ILeaseStore
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Agent, string Task), string> _tasks = [];
    private readonly SortedSet<(DateTimeOffset Deadline, string LeaseId)> _deadlines = [];

    public Task<LeaseOpenResult> OpenAsync(Lease lease, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_tasks.TryGetValue((lease.AgentId, lease.TaskId), out var existing))
            {
                return Task.FromResult(new LeaseOpenResult(_leases[existing], Created: false));
            }

            _leases[lease.LeaseId] = lease;
            _tasks[(lease.AgentId, lease.TaskId)] = lease.LeaseId;
            _deadlines.Add((lease.Deadline, lease.LeaseId));
            return Task.FromResult(new LeaseOpenResult(lease, Created: true));
        }
    }

    public Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_leases.GetValueOrDefault(leaseId));
        }
    }

    public Task<LeaseTransition> CompleteAsync(string leaseId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_leases.TryGetValue(leaseId, out var lease))
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotFound, null));
            }

            if (lease.IsTerminal)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, lease));
            }

            var ended = lease.StateAt(now) == LeaseState.Expired
                ? End(lease, LeaseState.Expired, lease.Deadline)
                : End(lease, LeaseState.Completed, now);
            var outcome = ended.State == LeaseState.Completed ? TransitionOutcome.Applied : TransitionOutcome.NotApplicable;
            return Task.FromResult(new LeaseTransition(outcome, ended));
        }
    }

    public Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_leases.TryGetValue(leaseId, out var lease))
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotFound, null));
            }

            if (lease.StateAt(now) != LeaseState.Active)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, lease));
            }

            var deadline = newDeadline > lease.MaxDeadline ? lease.MaxDeadline : newDeadline;
            deadline = deadline < lease.Deadline ? lease.Deadline : deadline;
            _deadlines.Remove((lease.Deadline, lease.LeaseId));
            var renewed = lease with { Deadline = deadline, Generation = lease.Generation + 1 };
            _leases[leaseId] = renewed;
            _deadlines.Add((deadline, leaseId));
            return Task.FromResult(new LeaseTransition(TransitionOutcome.Applied, renewed));
        }
    }

    public Task<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<string> due = _deadlines.TakeWhile(d => d.Deadline <= now).Take(limit).Select(d => d.LeaseId).ToList();
            return Task.FromResult(due);
        }
    }

    private Lease End(Lease lease, LeaseState state, DateTimeOffset endedAt)
    {
        _deadlines.Remove((lease.Deadline, lease.LeaseId));
        var ended = lease with { State = state, EndedAt = endedAt, Generation = lease.Generation + 1 };
        _leases[lease.LeaseId] = ended;
        return ended;
    }
}
