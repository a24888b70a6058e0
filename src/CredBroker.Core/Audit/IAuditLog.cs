namespace CredBroker.Core.Audit;

/// <summary>
/// The audit store: an append-only hash chain with signed checkpoints. Appends are serialised
/// across replicas (each record commits to the one before it). Implementations throw
/// <see cref="AuditUnavailableException"/> when they cannot write or read; callers fail closed.
/// </summary>
public interface IAuditLog
{
    /// <summary>Appends the event as the next record of the chain, durably, and returns it.</summary>
    Task<AuditRecord> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> records after <paramref name="afterPosition"/> (null = the oldest retained), in chain order.</summary>
    Task<IReadOnlyList<AuditRecord>> ReadAsync(string? afterPosition, int limit, CancellationToken cancellationToken);

    /// <summary>Where the retained chain starts and ends.</summary>
    Task<AuditLogState> GetStateAsync(CancellationToken cancellationToken);

    /// <summary>The retained signed checkpoints, oldest first.</summary>
    Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(CancellationToken cancellationToken);
}

/// <summary>The audit store cannot be reached or refused the write; nothing it would record may happen.</summary>
public sealed class AuditUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>How long the chain is kept and how often it is checkpointed.</summary>
public sealed record AuditLogOptions
{
    /// <summary>Records kept at most (0 = no count limit). Older records are dropped and the chain re-anchored.</summary>
    public long MaxRecords { get; init; }

    /// <summary>Records older than this are dropped (null = no age limit).</summary>
    public TimeSpan? MaxAge { get; init; }

    /// <summary>A signed checkpoint every this many records.</summary>
    public int CheckpointInterval { get; init; } = 100;

    /// <summary>
    /// Group commit: records written together in one store call at most (appends that arrive while a
    /// batch is being written wait for the next one). 1 writes one record per call.
    /// </summary>
    public int MaxBatch { get; init; } = 256;

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRecords);
        ArgumentOutOfRangeException.ThrowIfLessThan(CheckpointInterval, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBatch, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxBatch, 4096);
        if (MaxAge is { } age && age <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAge), "MaxAge must be positive.");
        }
    }
}
