namespace CredBroker.Core.Audit;

/// <summary>
/// An event as stored in the chain: its 1-based <see cref="Sequence"/>, the canonical JSON
/// <see cref="Body"/> that was hashed, the hash of the record before it and its own hash.
/// <see cref="Position"/> is the store's own cursor (a stream id on Redis).
/// </summary>
public sealed record AuditRecord(long Sequence, string PreviousHash, string Hash, string Body, string Position)
{
    /// <summary>The event, or null when the body does not parse (a tampered record; verification reports it).</summary>
    public AuditEvent? TryEvent() => AuditEventJson.TryParse(Body);
}

/// <summary>Where the retained chain starts (after retention dropped older records) and where it ends.</summary>
public sealed record AuditLogState(long AnchorSequence, string AnchorHash, long HeadSequence, string HeadHash)
{
    public static readonly AuditLogState Empty = new(0, AuditChain.GenesisHash, 0, AuditChain.GenesisHash);

    /// <summary>
    /// The signed checkpoint the chain is anchored at (retention drops whole checkpoint intervals);
    /// null while nothing was dropped (anchored at genesis). Read from the store: verification checks its signature.
    /// </summary>
    public AuditCheckpoint? Anchor { get; init; }

    /// <summary>This process's configured checkpoint interval (from configuration, not from the store).</summary>
    public int CheckpointInterval { get; init; }

    /// <summary>
    /// The newest record this process appended or was told about by the store since it started (0 = none).
    /// Kept in process memory, out of a store writer's reach: a chain rolled back below it is detected.
    /// </summary>
    public long WitnessSequence { get; init; }

    /// <summary>The hash of the record at <see cref="WitnessSequence"/>.</summary>
    public string WitnessHash { get; init; } = AuditChain.GenesisHash;
}
