namespace CredBroker.Core.Leases.InMemory;

/// <summary>
/// The lease store for dev mode and unit tests. One lock makes every operation atomic; it passes
/// the same contract suite as the Redis store. Not shared between processes, so not for production.
/// Like Redis, it drops a lease at <see cref="LeaseStoreOptions.RetainedUntil"/> (each sweep purges
/// what is past it, so a long-running dev broker does not grow without bound); the revocation log
/// per shard keeps events for <see cref="LeaseStoreOptions.RevocationRetention"/>.
/// </summary>
public sealed class InMemoryLeaseStore(LeaseStoreOptions? options = null) : ILeaseStore, IOpenLeaseCount
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly SortedSet<(DateTimeOffset Deadline, string LeaseId)> _deadlines = [];
    private readonly SortedSet<(DateTimeOffset Until, string LeaseId)> _retained = [];
    private readonly Dictionary<string, (DateTimeOffset RetryAt, ExpiredLease Lease)> _unconfirmed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _open = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Queue<DateTimeOffset>> _recentOpens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _quarantined = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _children = new(StringComparer.Ordinal);
    private readonly InMemoryRevocationLog _log = new(Validated(options ?? new LeaseStoreOptions()).RevocationRetention);

    private static LeaseStoreOptions Validated(LeaseStoreOptions options)
    {
        options.Validate();
        return options;
    }

    public Task<LeaseOpenResult> OpenAsync(Lease lease, LeaseQuota quota, CancellationToken cancellationToken)
    {
        quota.Validate();
        LeaseIds.Require(lease);
        lock (_gate)
        {
            if (_quarantined.ContainsKey(lease.AgentId))
            {
                return Task.FromResult(LeaseOpenResult.Refused(OpenRefusal.Quarantined));
            }

            if (_leases.TryGetValue(lease.LeaseId, out var existing))
            {
                return Task.FromResult(new LeaseOpenResult(existing, Created: false));
            }

            var now = lease.CreatedAt;
            var open = _open.GetValueOrDefault(lease.AgentId)?.Select(id => _leases[id]).Where(l => l.Deadline > now).ToList() ?? [];
            if (quota.ToxicGuards.Count > 0)
            {
                // What the agent holds right now (its other active leases), read under the same lock as the write.
                var held = HeldScopes(lease.AgentId, now);
                if (quota.ToxicGuards.FirstOrDefault(g => g.ReachedBy(held)) is { } reached)
                {
                    return Task.FromResult(LeaseOpenResult.Toxic(reached.RuleId));
                }
            }

            if (quota.MaxConcurrent is { } maxConcurrent && open.Count >= maxConcurrent)
            {
                return Task.FromResult(LeaseOpenResult.Refused(OpenRefusal.ConcurrencyLimit, open.Min(l => l.Deadline) - now));
            }

            var recent = _recentOpens.GetValueOrDefault(lease.AgentId) ?? new Queue<DateTimeOffset>();
            while (recent.TryPeek(out var oldest) && oldest <= now - quota.RateWindow)
            {
                recent.Dequeue();
            }

            if (quota.MaxOpensPerWindow is { } maxOpens && recent.Count >= maxOpens)
            {
                return Task.FromResult(LeaseOpenResult.Refused(OpenRefusal.RateLimit, recent.Peek() + quota.RateWindow - now));
            }

            _leases[lease.LeaseId] = lease;
            _retained.Add((LeaseStoreOptions.RetainedUntil(lease), lease.LeaseId));
            _deadlines.Add((lease.Deadline, lease.LeaseId));
            OpenSet(lease.AgentId).Add(lease.LeaseId);
            if (quota.MaxOpensPerWindow is not null)
            {
                recent.Enqueue(now);
                _recentOpens[lease.AgentId] = recent;
            }

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

    public Task<Lease?> FindByTaskAsync(string agentId, string taskId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_leases.GetValueOrDefault(LeaseIds.For(agentId, taskId)));
        }
    }

    public Task<LeaseTransition> CompleteAsync(string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        Kill(leaseId, agentId, now, expectedGeneration, LeaseState.Completed, RevocationCause.Completed, "", null);

    public Task<LeaseTransition> RevokeAsync(string leaseId, string reason, string actor, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        Kill(leaseId, null, now, expectedGeneration, LeaseState.Revoked, RevocationCause.Revoked, reason, actor);

    public Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (Precheck(leaseId, expectedGeneration) is { } refused)
            {
                return Task.FromResult(refused);
            }

            var lease = _leases[leaseId];
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

    public Task<LeaseTransition> ApproveAsync(
        string leaseId, IReadOnlyList<string> scopes, DateTimeOffset deadline, string actor, string note, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken,
        IReadOnlyList<ToxicGuard>? toxicGuards = null)
    {
        foreach (var guard in toxicGuards ?? [])
        {
            guard.Validate();
        }

        lock (_gate)
        {
            if (Precheck(leaseId, expectedGeneration) is { } refused)
            {
                return Task.FromResult(refused);
            }

            var lease = _leases[leaseId];
            if (lease.StateAt(now) != LeaseState.PendingApproval)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, lease));
            }

            if (toxicGuards is { Count: > 0 } && HeldScopes(lease.AgentId, now) is var held
                && toxicGuards.FirstOrDefault(g => g.ReachedBy(held)) is { } reached)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.ToxicCombination, lease) { RuleId = reached.RuleId });
            }

            var target = deadline > lease.MaxDeadline ? lease.MaxDeadline : deadline;
            _deadlines.Remove((lease.Deadline, lease.LeaseId));
            var approved = lease with
            {
                State = LeaseState.Active,
                Scopes = scopes.ToArray(),
                Deadline = target,
                Generation = lease.Generation + 1,
                Approval = (lease.Approval ?? EmptyApproval) with { Approved = true, DecidedBy = actor, Note = note.Length > 0 ? note : null },
            };
            _leases[leaseId] = approved;
            _deadlines.Add((target, leaseId));
            return Task.FromResult(new LeaseTransition(TransitionOutcome.Applied, approved));
        }
    }

    public Task<IReadOnlyList<Lease>> ListOpenLeasesAsync(string agentId, DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        lock (_gate)
        {
            IReadOnlyList<Lease> open = (_open.GetValueOrDefault(agentId) ?? [])
                .Select(id => _leases[id])
                .Where(l => l.StateAt(now) is LeaseState.Active or LeaseState.PendingApproval)
                .OrderBy(l => l.Deadline).ThenBy(l => l.LeaseId, StringComparer.Ordinal)
                .Take(limit)
                .ToList();
            return Task.FromResult(open);
        }
    }

    private static LeaseApproval EmptyApproval { get; } = new() { RequestedScopes = [], ApprovalScopes = [], LeaseTtl = TimeSpan.Zero, Reason = string.Empty, RuleIds = [] };

    public Task<ExpiryClaim> ClaimExpiredAsync(int shard, DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, LeaseIds.ShardCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        lock (_gate)
        {
            Purge(now);
            // Claims whose claimer never confirmed them (it died, or could not record them) come first, claimed again.
            var stale = _unconfirmed.Values.Where(u => u.RetryAt <= now && LeaseIds.TryGetShard(u.Lease.LeaseId, out var s) && s == shard)
                .OrderBy(u => u.RetryAt).ThenBy(u => u.Lease.LeaseId, StringComparer.Ordinal).Take(limit).Select(u => u.Lease).ToList();
            var due = _deadlines.TakeWhile(d => d.Deadline <= now)
                .Where(d => LeaseIds.TryGetShard(d.LeaseId, out var s) && s == shard)
                .Take(limit - stale.Count).Select(d => d.LeaseId).ToList();
            var expired = stale.Concat(due.Select(id => End(_leases[id], LeaseState.Expired, _leases[id].Deadline))
                .Select(l => new ExpiredLease(l.LeaseId, l.Deadline))).ToList();
            foreach (var lease in expired)
            {
                _unconfirmed[lease.LeaseId] = (now + ExpiredLease.ClaimTimeout, lease);
            }

            var nextDeadline = _deadlines.Where(d => LeaseIds.TryGetShard(d.LeaseId, out var s) && s == shard).Select(d => (DateTimeOffset?)d.Deadline).FirstOrDefault();
            var nextRetry = _unconfirmed.Values.Where(u => LeaseIds.TryGetShard(u.Lease.LeaseId, out var s) && s == shard).Select(u => (DateTimeOffset?)u.RetryAt).Min();
            var nextDue = nextDeadline is null ? nextRetry : nextRetry is null || nextDeadline < nextRetry ? nextDeadline : nextRetry;
            return Task.FromResult(new ExpiryClaim(expired, nextDue));
        }
    }

    public Task ConfirmExpiredAsync(int shard, IReadOnlyList<ExpiredLease> recorded, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            foreach (var lease in recorded)
            {
                _unconfirmed.Remove(lease.LeaseId);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Drops leases past their retention (their tokens died a day ago), as Redis expires their keys.</summary>
    private void Purge(DateTimeOffset now)
    {
        while (_retained.Min is var (until, leaseId) && leaseId is not null && until <= now)
        {
            _retained.Remove((until, leaseId));
            _children.Remove(leaseId);
            if (_leases.Remove(leaseId, out var lease))
            {
                _deadlines.Remove((lease.Deadline, leaseId));
                _open.GetValueOrDefault(lease.AgentId)?.Remove(leaseId);
            }
        }
    }

    public Task<int> QuarantineAgentAsync(string agentId, string reason, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_quarantined.TryAdd(agentId, now))
            {
                return Task.FromResult(0);
            }

            var revoked = 0;
            foreach (var lease in (_open.GetValueOrDefault(agentId) ?? []).Select(id => _leases[id]).ToList())
            {
                var timedOut = lease.Deadline <= now;
                if (timedOut)
                {
                    ExpireUnswept(lease, now);
                }
                else
                {
                    End(lease, LeaseState.Revoked, now);
                }

                revoked += timedOut ? 0 : 1;
            }

            _log.Append(LeaseIds.ShardOf(agentId), position => new RevocationEvent(
                LeaseIds.ShardOf(agentId), position, RevocationKind.Agent, null, agentId, null, RevocationCause.Quarantined, reason, actor, now, now));
            return Task.FromResult(revoked);
        }
    }

    public Task<bool> ReleaseAgentAsync(string agentId, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_quarantined.Remove(agentId));
        }
    }

    public Task<DateTimeOffset?> GetAgentStatusAsync(string agentId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_quarantined.TryGetValue(agentId, out var since) ? since : (DateTimeOffset?)null);
        }
    }

    public Task<RevocationPage> ReadRevocationsAsync(RevocationCursor? after, int limit, CancellationToken cancellationToken)
    {
        RevocationFeed.ValidateLimit(limit);
        lock (_gate)
        {
            return Task.FromResult(_log.Read(after, limit));
        }
    }

    public Task<RevocationCursor> CurrentRevocationCursorAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_log.Tail());
        }
    }

    public Task<LeaseTransition> AddChildAsync(string parentLeaseId, string childLeaseId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (!_leases.TryGetValue(parentLeaseId, out var parent))
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotFound, null));
            }

            if (parent.StateAt(now) != LeaseState.Active)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, parent));
            }

            if (!_children.TryGetValue(parentLeaseId, out var children))
            {
                _children[parentLeaseId] = children = [];
            }

            if (!children.Contains(childLeaseId, StringComparer.Ordinal))
            {
                children.Add(childLeaseId);
            }

            return Task.FromResult(new LeaseTransition(TransitionOutcome.Applied, parent));
        }
    }

    public Task<IReadOnlyList<string>> GetChildrenAsync(string leaseId, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<string> children = _children.TryGetValue(leaseId, out var list) ? [.. list] : [];
            return Task.FromResult(children);
        }
    }

    public Task<LeasePage> ListLeasesAsync(LeaseQuery query, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var after = query.Validate();
        lock (_gate)
        {
            var matching = _leases.Values
                .Where(l => query.Matches(l, now))
                .Select(l => (Token: LeasePageToken.Of(l), Lease: l))
                .Where(x => after is null || x.Token.CompareTo(after) > 0)
                .OrderBy(x => x.Token)
                .Take(query.PageSize + 1)
                .ToList();
            var page = matching.Take(query.PageSize).ToList();
            // Every shard is reachable here; shards an earlier page skipped (a token of another store) stay reported.
            var skipped = after?.Skipped ?? 0;
            var next = matching.Count > query.PageSize ? (page[^1].Token with { Skipped = skipped }).ToString() : null;
            return Task.FromResult(new LeasePage(page.Select(x => LeaseQuery.AsOf(x.Lease, now)).ToList(), next) { UnreachableShards = LeasePageToken.ShardsOf(skipped) });
        }
    }

    /// <summary>Completes or revokes: the lease ends now with one event; one past its deadline ends as expired, silently.</summary>
    private Task<LeaseTransition> Kill(string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, LeaseState state, RevocationCause cause, string reason, string? actor)
    {
        lock (_gate)
        {
            if (agentId is not null && _leases.TryGetValue(leaseId, out var owned) && owned.AgentId != agentId)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotFound, null));
            }

            if (Precheck(leaseId, expectedGeneration) is { } refused)
            {
                return Task.FromResult(refused);
            }

            var lease = _leases[leaseId];
            IReadOnlyList<string> children = _children.TryGetValue(leaseId, out var list) ? [.. list.Order(StringComparer.Ordinal)] : [];
            if (lease.IsTerminal)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, lease) { Children = children });
            }

            if (lease.Deadline <= now)
            {
                return Task.FromResult(new LeaseTransition(TransitionOutcome.NotApplicable, ExpireUnswept(lease, now)) { Children = children });
            }

            var ended = End(lease, state, now);
            if (lease.State == LeaseState.PendingApproval)
            {
                // A denied approval records who denied it and why, for the agent watching it.
                ended = _leases[leaseId] = ended with { Approval = (ended.Approval ?? EmptyApproval) with { Approved = false, DecidedBy = string.IsNullOrEmpty(actor) ? lease.AgentId : actor, Note = reason.Length > 0 ? reason : null } };
            }

            var shard = LeaseIds.ShardOf(lease.AgentId);
            _log.Append(shard, position => new RevocationEvent(
                shard, position, RevocationKind.Lease, leaseId, lease.AgentId, lease.TaskId, cause, reason, string.IsNullOrEmpty(actor) ? lease.AgentId : actor, now, lease.Deadline));
            return Task.FromResult(new LeaseTransition(TransitionOutcome.Applied, ended) { Children = children });
        }
    }

    private LeaseTransition? Precheck(string leaseId, long? expectedGeneration) =>
        !_leases.TryGetValue(leaseId, out var lease) ? new LeaseTransition(TransitionOutcome.NotFound, null)
        : expectedGeneration is { } expected && expected != lease.Generation ? new LeaseTransition(TransitionOutcome.Conflict, lease)
        : null;

    /// <summary>The scopes of the agent's active leases with a deadline after <paramref name="now"/> (call under the lock).</summary>
    private HashSet<string> HeldScopes(string agentId, DateTimeOffset now) =>
        (_open.GetValueOrDefault(agentId) ?? []).Select(id => _leases[id])
            .Where(l => l.State == LeaseState.Active && l.Deadline > now)
            .SelectMany(l => l.Scopes).ToHashSet(StringComparer.Ordinal);

    private HashSet<string> OpenSet(string agentId)
    {
        if (!_open.TryGetValue(agentId, out var set))
        {
            _open[agentId] = set = new HashSet<string>(StringComparer.Ordinal);
        }

        return set;
    }

    /// <summary>
    /// Ends a lease found past its deadline before any sweep claimed it (a late completion, revocation or quarantine) and
    /// hands its expiry to the sweepers as a claim that already timed out, so one of them records it (call under the lock).
    /// </summary>
    private Lease ExpireUnswept(Lease lease, DateTimeOffset now)
    {
        var ended = End(lease, LeaseState.Expired, lease.Deadline);
        _unconfirmed[lease.LeaseId] = (now, new ExpiredLease(lease.LeaseId, lease.Deadline));
        return ended;
    }

    private Lease End(Lease lease, LeaseState state, DateTimeOffset endedAt)
    {
        _deadlines.Remove((lease.Deadline, lease.LeaseId));
        if (_open.TryGetValue(lease.AgentId, out var open) && open.Remove(lease.LeaseId) && open.Count == 0)
        {
            _open.Remove(lease.AgentId);
        }

        var ended = lease with { State = state, EndedAt = endedAt, Generation = lease.Generation + 1 };
        _leases[lease.LeaseId] = ended;
        return ended;
    }

    public Task<long> CountOpenAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult((long)_deadlines.Count);
        }
    }
}
