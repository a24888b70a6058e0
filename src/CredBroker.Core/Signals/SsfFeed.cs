using CredBroker.Core.Leases;

namespace CredBroker.Core.Signals;

/// <summary>One undelivered event of a stream, with its stable jti (the same on every redelivery).</summary>
public sealed record SsfPending(string Jti, RevocationEvent Event);

/// <summary>Up to the requested number of undelivered events; <see cref="CursorTooOld"/>: retention dropped some the receiver never saw.</summary>
public sealed record SsfBatch(IReadOnlyList<SsfPending> Events, bool MoreAvailable, bool CursorTooOld);

/// <summary>
/// A stream's view of the revocation log (the same resumable log WatchRevocations reads). A SET's
/// jti is <c>&lt;stream id&gt;.&lt;shard&gt;.&lt;log position&gt;</c>, so it is stable across
/// redeliveries and tells which log entry an acknowledgement is for.
/// </summary>
public static class SsfFeed
{
    public const int MaxAckedAhead = 1000;

    public static string Jti(string streamId, RevocationEvent e) => $"{streamId}.{e.Shard}.{e.Position}";

    /// <summary>The stream's position; a new stream starts before every event still retained.</summary>
    public static RevocationCursor CursorOf(SsfStream stream) =>
        stream.Cursor is { } text && RevocationCursor.TryParse(text, out var cursor) ? cursor : RevocationCursor.Start;

    /// <summary>The next undelivered events after the stream's cursor, skipping those acknowledged out of order.</summary>
    public static async Task<SsfBatch> ReadAsync(ILeaseStore store, SsfStream stream, int max, CancellationToken cancellationToken)
    {
        if (!stream.WantsRevocations || max <= 0)
        {
            return new SsfBatch([], false, false);
        }

        var ahead = stream.AckedAhead.ToHashSet(StringComparer.Ordinal);
        var limit = Math.Min(RevocationFeed.MaxPageSize, max + ahead.Count);
        var from = CursorOf(stream);
        var page = await store.ReadRevocationsAsync(from, limit, cancellationToken);
        var events = page.Events.Select(e => new SsfPending(Jti(stream.StreamId, e), e)).Where(p => !ahead.Contains(p.Jti)).ToList();
        var more = page.Events.Count == limit || events.Count > max;
        // From the start, trimmed events are not "missed": their tokens had expired before the stream existed.
        return new SsfBatch(events.Take(max).ToList(), more, page.CursorTooOld && !from.Equals(RevocationCursor.Start));
    }

    /// <summary>
    /// The stream after the receiver acknowledged <paramref name="acked"/>: the cursor moves over the
    /// longest run of acknowledged events right after it; acknowledgements beyond a gap are kept in
    /// <see cref="SsfStream.AckedAhead"/> (bounded) and applied when the gap closes. Jtis of other
    /// streams or of events already passed are ignored.
    /// </summary>
    public static async Task<SsfStream> AcknowledgeAsync(ILeaseStore store, SsfStream stream, IEnumerable<string> acked, CancellationToken cancellationToken)
    {
        var prefix = stream.StreamId + ".";
        var pending = stream.AckedAhead.Concat(acked.Where(j => j.StartsWith(prefix, StringComparison.Ordinal))).ToHashSet(StringComparer.Ordinal);
        if (pending.Count == 0)
        {
            return stream;
        }

        var cursor = CursorOf(stream);
        var start = cursor;
        while (pending.Count > 0)
        {
            var page = await store.ReadRevocationsAsync(cursor, Math.Min(RevocationFeed.MaxPageSize, pending.Count), cancellationToken);
            var moved = 0;
            foreach (var e in page.Events)
            {
                if (!pending.Remove(Jti(stream.StreamId, e)))
                {
                    break;
                }

                cursor = cursor.With(e.Shard, e.Position);
                moved++;
            }

            if (moved < page.Events.Count || page.Events.Count == 0)
            {
                break;
            }
        }

        // Drop acknowledgements at or below the cursor (already passed, or trimmed by retention).
        var ahead = pending.Where(j => IsAhead(j, prefix, cursor)).Take(MaxAckedAhead).ToList();
        return ReferenceEquals(cursor, start) && ahead.Count == stream.AckedAhead.Count
            ? stream
            : stream with { Cursor = cursor.ToString(), AckedAhead = ahead };
    }

    private static bool IsAhead(string jti, string prefix, RevocationCursor cursor)
    {
        var parts = jti[prefix.Length..].Split('.');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var shard) || shard < 0 || shard >= LeaseIds.ShardCount
            || !LogPosition.TryParse(parts[1], out var position))
        {
            return false;
        }

        return position > cursor[shard];
    }
}
