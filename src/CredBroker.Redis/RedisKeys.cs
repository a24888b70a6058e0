using System.Globalization;
using CredBroker.Core.Leases;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// Key names. Every key of an agent carries its shard's hash tag, so scripts stay in one slot.
/// Scripts that reach keys named by data (a lease id from an index) build them from the same tag.
/// </summary>
internal static class RedisKeys
{
    public static string Tag(int shard) => "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";

    public static string Tag(string agentId) => Tag(LeaseIds.ShardOf(agentId));

    public static RedisKey Lease(int shard, string leaseId) => Tag(shard) + "lease:" + leaseId;

    /// <summary>The leases delegated from a lease (a set, in the parent's shard, retained as long as the parent).</summary>
    public static RedisKey Children(int shard, string leaseId) => Tag(shard) + "lease:" + leaseId + ":children";

    public static RedisKey Deny(int shard, string leaseId) => Tag(shard) + "deny:" + leaseId;

    public static RedisKey Deadlines(int shard) => Tag(shard) + "deadlines";

    /// <summary>Expiries claimed by a sweeper and not yet confirmed recorded, by when the claim times out (with <see cref="ClaimedDeadlines"/>).</summary>
    public static RedisKey Claimed(int shard) => Tag(shard) + "deadlines:claimed";

    public static RedisKey ClaimedDeadlines(int shard) => Tag(shard) + "deadlines:claimed:at";

    /// <summary>Every retained lease of the shard, scored by when its hash expires (the listing order).</summary>
    public static RedisKey ShardLeases(int shard) => Tag(shard) + "leases";

    public static RedisKey Revocations(int shard) => Tag(shard) + "revocations";

    /// <summary>The id of the newest revocation event dropped by retention (for "cursor too old").</summary>
    public static RedisKey RevocationsTrimmed(int shard) => Tag(shard) + "revocations:trimmed";

    /// <summary>The agent's open leases, scored by deadline (concurrency quota, quarantine).</summary>
    public static RedisKey AgentOpen(string agentId) => Tag(agentId) + "agent:" + agentId + ":open";

    /// <summary>The agent's opens in the rate window, scored by open time.</summary>
    public static RedisKey AgentOpens(string agentId) => Tag(agentId) + "agent:" + agentId + ":opens";

    public static RedisKey Quarantine(string agentId) => Tag(agentId) + "agent:" + agentId + ":quarantine";
}
