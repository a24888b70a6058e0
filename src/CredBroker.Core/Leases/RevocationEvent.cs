namespace CredBroker.Core.Leases;

public enum RevocationKind
{
    /// <summary>One lease: tokens with its <c>lease_id</c> are invalid (until <see cref="RevocationEvent.NotAfter"/>, the lease deadline).</summary>
    Lease,

    /// <summary>A whole agent (quarantine): its tokens issued before <see cref="RevocationEvent.NotAfter"/> are invalid.</summary>
    Agent,
}

public enum RevocationCause
{
    Completed,
    Revoked,
    Quarantined,
}

/// <summary>One entry of the revocation log. <see cref="Position"/> orders it within <see cref="Shard"/>.</summary>
public sealed record RevocationEvent(
    int Shard,
    LogPosition Position,
    RevocationKind Kind,
    string? LeaseId,
    string AgentId,
    string? TaskId,
    RevocationCause Cause,
    string Reason,
    string Actor,
    DateTimeOffset At,
    DateTimeOffset NotAfter);

/// <summary>
/// A page of the revocation feed. <see cref="CursorTooOld"/>: events after the given cursor were
/// already dropped by retention, so the reader missed some and must resync (the retained ones are
/// still returned and the cursor still advances).
/// </summary>
public sealed record RevocationPage(IReadOnlyList<RevocationEvent> Events, RevocationCursor Cursor, bool CursorTooOld);

public static class RevocationCauseNames
{
    public static string ToWire(this RevocationCause cause) => cause switch
    {
        RevocationCause.Completed => "completed",
        RevocationCause.Revoked => "revoked",
        RevocationCause.Quarantined => "quarantined",
        _ => throw new ArgumentOutOfRangeException(nameof(cause)),
    };

    public static RevocationCause FromWire(string value) => value switch
    {
        "completed" => RevocationCause.Completed,
        "revoked" => RevocationCause.Revoked,
        "quarantined" => RevocationCause.Quarantined,
        _ => throw new FormatException($"Unknown revocation cause '{value}'."),
    };
}

/// <summary>How every store turns per-shard reads into one page, so they page identically.</summary>
public static class RevocationFeed
{
    public const int MaxPageSize = 1000;

    public static void ValidateLimit(int limit)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, $"A revocation page holds 1 to {MaxPageSize} events.");
        }
    }

    /// <summary>
    /// Merges each shard's events after <paramref name="from"/> (each in log order) by position and
    /// keeps the first <paramref name="limit"/>; what is kept of each shard is a prefix of it, so the
    /// new cursor (the last kept position per shard) misses nothing and repeats nothing.
    /// For a null cursor, <paramref name="from"/> is just before the oldest retained event of each
    /// shard (the newest dropped one), so a reader that started there is never "too old" later.
    /// </summary>
    public static RevocationPage Page(IReadOnlyList<IReadOnlyList<RevocationEvent>> perShard, RevocationCursor from, int limit, bool cursorTooOld)
    {
        var taken = perShard.SelectMany(s => s).OrderBy(e => e.Position).ThenBy(e => e.Shard).Take(limit).ToList();
        var cursor = from;
        foreach (var e in taken)
        {
            cursor = cursor.With(e.Shard, e.Position);
        }

        return new RevocationPage(taken, cursor, cursorTooOld);
    }
}
