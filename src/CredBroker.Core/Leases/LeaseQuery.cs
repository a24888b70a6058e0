using System.Globalization;

namespace CredBroker.Core.Leases;

/// <summary>
/// An operator's lease listing. Leases come in a stable order: by shard, then by the time the
/// store drops them (<see cref="LeasePageToken.SortKeyOf"/>), then by id; a page token resumes
/// after the last lease returned, so paging covers every lease once even while leases change.
/// A listing of every agent reads the shards it can and reports the others
/// (<see cref="LeasePage.UnreachableShards"/>); one agent's listing reads one shard and fails whole.
/// </summary>
public sealed record LeaseQuery(string? AgentId = null, string? Owner = null, LeaseState? State = null, int PageSize = 100, string? PageToken = null)
{
    public const int MaxPageSize = 500;

    /// <summary>Throws <see cref="ArgumentException"/> for a page size outside 1..500 or a token that does not parse.</summary>
    public LeasePageToken? Validate()
    {
        if (PageSize is < 1 or > MaxPageSize)
        {
            throw new ArgumentException($"PageSize must be between 1 and {MaxPageSize}.");
        }

        if (PageToken is null)
        {
            return null;
        }

        return LeasePageToken.TryParse(PageToken, out var token)
            ? token
            : throw new ArgumentException("PageToken is not a token this store issued.");
    }

    public bool Matches(Lease lease, DateTimeOffset now) =>
        (AgentId is null || lease.AgentId == AgentId)
        && (Owner is null || lease.Owner == Owner)
        && (State is null || lease.StateAt(now) == State);

    /// <summary>The lease as reported to operators: its state as of <paramref name="now"/>.</summary>
    public static Lease AsOf(Lease lease, DateTimeOffset now) =>
        lease.StateAt(now) == LeaseState.Expired && lease.State != LeaseState.Expired
            ? lease with { State = LeaseState.Expired, EndedAt = lease.Deadline }
            : lease;
}

/// <summary>
/// One page of a listing. <see cref="UnreachableShards"/> (ascending, empty = the walk so far is
/// complete): the shards this walk could not read, on this page or on an earlier page of the same
/// walk (the page token carries them), so their leases are missing from what the walk returned. A
/// walk never goes back to a skipped shard: paging on continues with the later shards, and a new
/// walk (no page token) reads every shard again.
/// </summary>
public sealed record LeasePage(IReadOnlyList<Lease> Leases, string? NextPageToken)
{
    public IReadOnlyList<int> UnreachableShards { get; init; } = [];
}

/// <summary>
/// Keyset position of the last lease of a page: <c>p1.&lt;shard&gt;.&lt;sort key&gt;.&lt;lease id&gt;</c>;
/// when the walk skipped shards it could not read, <c>p2.&lt;skipped&gt;.&lt;shard&gt;.&lt;sort key&gt;.&lt;lease id&gt;</c>
/// with <see cref="Skipped"/> as 4 lowercase hex digits (bit n = shard n, every one before <see cref="Shard"/>).
/// </summary>
public sealed record LeasePageToken(int Shard, long SortKey, string LeaseId) : IComparable<LeasePageToken>
{
    /// <summary>The shards this walk skipped so far (bit n = shard n); they are reported on every later page.</summary>
    public int Skipped { get; init; }

    /// <summary>The shards of a <see cref="Skipped"/> mask, ascending.</summary>
    public static IReadOnlyList<int> ShardsOf(int mask) =>
        Enumerable.Range(0, LeaseIds.ShardCount).Where(s => (mask & (1 << s)) != 0).ToList();

    /// <summary>When the store drops the lease (unix ms): see <see cref="LeaseStoreOptions.RetainedUntil"/>.</summary>
    public static long SortKeyOf(Lease lease) => LeaseStoreOptions.RetainedUntil(lease).ToUnixTimeMilliseconds();

    public static LeasePageToken Of(Lease lease) =>
        new(LeaseIds.TryGetShard(lease.LeaseId, out var shard) ? shard : 0, SortKeyOf(lease), lease.LeaseId);

    public int CompareTo(LeasePageToken? other)
    {
        if (other is null)
        {
            return 1;
        }

        return Shard != other.Shard ? Shard.CompareTo(other.Shard)
            : SortKey != other.SortKey ? SortKey.CompareTo(other.SortKey)
            : string.CompareOrdinal(LeaseId, other.LeaseId);
    }

    public override string ToString() => Skipped == 0
        ? FormattableString.Invariant($"p1.{Shard}.{SortKey}.{LeaseId}")
        : FormattableString.Invariant($"p2.{Skipped:x4}.{Shard}.{SortKey}.{LeaseId}");

    public static bool TryParse(string? text, out LeasePageToken token)
    {
        token = null!;
        var parts = text?.Split('.');
        var skipped = 0;
        if (parts is { Length: 5 } && parts[0] == "p2"
            && int.TryParse(parts[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out skipped))
        {
            parts = ["p1", parts[2], parts[3], parts[4]];
        }
        else if (parts is { Length: 5 })
        {
            return false;
        }

        if (parts is not { Length: 4 } || parts[0] != "p1"
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var shard)
            || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var sortKey)
            || !LeaseIds.TryGetShard(parts[3], out var idShard) || idShard != shard
            || skipped < 0 || skipped >= 1 << shard)
        {
            // A skipped shard is always one the walk passed: before the token's shard.
            return false;
        }

        token = new LeasePageToken(shard, sortKey, parts[3]) { Skipped = skipped };
        return token.ToString() == text;
    }
}
