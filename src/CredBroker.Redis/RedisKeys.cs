using System.Globalization;
using CredBroker.Core.Leases;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>Key names. Every key of an agent carries its shard's hash tag, so scripts stay in one slot.</summary>
internal static class RedisKeys
{
    public static string Tag(int shard) => "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";

    public static RedisKey Lease(int shard, string leaseId) => Tag(shard) + "lease:" + leaseId;

    public static RedisKey Deadlines(int shard) => Tag(shard) + "deadlines";

    public static RedisKey Task(string agentId, string taskId) => Tag(LeaseIds.ShardOf(agentId)) + "task:" + agentId + ":" + taskId;

    public static (RedisKey Lease, RedisKey Deadlines) For(string agentId, string leaseId)
    {
        var shard = LeaseIds.ShardOf(agentId);
        return (Lease(shard, leaseId), Deadlines(shard));
    }
}
