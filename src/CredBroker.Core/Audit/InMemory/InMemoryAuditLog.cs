using System.Globalization;

namespace CredBroker.Core.Audit.InMemory;

/// <summary>The audit chain in process memory (dev mode, unit tests): same chain, checkpoints and retention as on Redis.</summary>
public sealed class InMemoryAuditLog : IAuditLog
{
    private readonly object _gate = new();
    private readonly List<AuditRecord> _records = [];
    private readonly List<AuditCheckpoint> _checkpoints = [];
    private readonly Dictionary<long, DateTimeOffset> _ages = [];
    private readonly IAuditSigner _signer;
    private readonly AuditLogOptions _options;
    private readonly TimeProvider _time;
    private AuditLogState _state = AuditLogState.Empty;
    private (long Sequence, string Hash) _witness = (0, AuditChain.GenesisHash);
    private long _nextPosition = 1;

    public InMemoryAuditLog(IAuditSigner signer, AuditLogOptions? options = null, TimeProvider? time = null)
    {
        _options = options ?? new AuditLogOptions();
        _options.Validate();
        _signer = signer;
        _time = time ?? TimeProvider.System;
    }

    public Task<AuditRecord> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var body = AuditEventJson.Write(auditEvent);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            var next = AuditChain.Next(_state, body) with { Position = (_nextPosition++).ToString(CultureInfo.InvariantCulture) };
            _records.Add(next);
            _state = _state with { HeadSequence = next.Sequence, HeadHash = next.Hash };
            _witness = (next.Sequence, next.Hash);
            _ages[next.Sequence] = now;
            if (next.Sequence % _options.CheckpointInterval == 0)
            {
                _checkpoints.Add(AuditCheckpoint.Create(_signer, next.Sequence, next.Hash, now, _options.CheckpointInterval));
            }

            ApplyRetention(now);
            return Task.FromResult(next);
        }
    }

    public Task<IReadOnlyList<AuditRecord>> ReadAsync(string? afterPosition, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        cancellationToken.ThrowIfCancellationRequested();
        var after = afterPosition is null ? 0 : long.Parse(afterPosition, CultureInfo.InvariantCulture);
        lock (_gate)
        {
            IReadOnlyList<AuditRecord> page = _records.Where(r => long.Parse(r.Position, CultureInfo.InvariantCulture) > after).Take(limit).ToList();
            return Task.FromResult(page);
        }
    }

    public Task<AuditLogState> GetStateAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            return Task.FromResult(_state with
            {
                CheckpointInterval = _options.CheckpointInterval, WitnessSequence = _witness.Sequence, WitnessHash = _witness.Hash,
            });
        }
    }

    public Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            IReadOnlyList<AuditCheckpoint> copy = _checkpoints.ToList();
            return Task.FromResult(copy);
        }
    }

    /// <summary>
    /// Drops records past the count or age limit, whole checkpoint intervals at a time, and re-anchors
    /// the chain at the newest dropped checkpoint (the anchor keeps its signature).
    /// </summary>
    private void ApplyRetention(DateTimeOffset now)
    {
        var excess = _options.MaxRecords > 0 ? _records.Count - _options.MaxRecords : 0;
        var candidates = 0;
        while (candidates < _records.Count - 1
            && (candidates < excess || (_options.MaxAge is { } age && _ages[_records[candidates].Sequence] < now - age)))
        {
            candidates++;
        }

        if (candidates == 0)
        {
            return;
        }

        var lastCandidate = _records[candidates - 1].Sequence;
        var anchor = _checkpoints.LastOrDefault(c => c.Sequence > _state.AnchorSequence && c.Sequence <= lastCandidate);
        if (anchor is null)
        {
            return;
        }

        foreach (var dropped in _records.TakeWhile(r => r.Sequence <= anchor.Sequence).ToList())
        {
            _records.Remove(dropped);
            _ages.Remove(dropped.Sequence);
        }

        _state = _state with { AnchorSequence = anchor.Sequence, AnchorHash = anchor.Hash, Anchor = anchor };
        _checkpoints.RemoveAll(c => c.Sequence <= anchor.Sequence);
    }

    // Tampering, for the tests that prove verification catches it (an attacker with write access to the store).
    internal void TamperReplace(long sequence, Func<AuditRecord, AuditRecord> change)
    {
        lock (_gate)
        {
            var index = _records.FindIndex(r => r.Sequence == sequence);
            _records[index] = change(_records[index]);
        }
    }

    /// <summary>This process forgets what it appended, as a restarted broker would (the store stays).</summary>
    internal void ForgetWitness()
    {
        lock (_gate)
        {
            _witness = (0, AuditChain.GenesisHash);
        }
    }

    internal void TamperDeleteCheckpoints(long after)
    {
        lock (_gate)
        {
            _checkpoints.RemoveAll(c => c.Sequence > after);
        }
    }

    internal void TamperAddCheckpoints(IEnumerable<AuditCheckpoint> checkpoints)
    {
        lock (_gate)
        {
            _checkpoints.AddRange(checkpoints);
        }
    }

    /// <summary>Drops records through <paramref name="through"/> and moves the anchor there, keeping (or forging) the anchor signature.</summary>
    internal void TamperReanchor(long through, AuditCheckpoint? anchor)
    {
        lock (_gate)
        {
            var last = _records.Last(r => r.Sequence == through);
            _records.RemoveAll(r => r.Sequence <= through);
            _checkpoints.RemoveAll(c => c.Sequence <= through);
            _state = _state with { AnchorSequence = last.Sequence, AnchorHash = last.Hash, Anchor = anchor };
        }
    }

    internal void TamperDelete(long sequence)
    {
        lock (_gate)
        {
            _records.RemoveAll(r => r.Sequence == sequence);
        }
    }

    internal void TamperTruncate(long keepThrough, bool rewriteHead)
    {
        lock (_gate)
        {
            _records.RemoveAll(r => r.Sequence > keepThrough);
            if (rewriteHead)
            {
                var last = _records.LastOrDefault();
                _state = _state with { HeadSequence = last?.Sequence ?? _state.AnchorSequence, HeadHash = last?.Hash ?? _state.AnchorHash };
            }
        }
    }
}
