using System.Security.Cryptography;
using System.Text;

namespace CredBroker.Core.Leases;

/// <summary>
/// Lease ids carry their shard: <c>l&lt;2 hex&gt;_&lt;26 base32&gt;</c>. All leases of one agent
/// share a shard, so a store can keep an agent's leases, indexes and counters in one slot.
/// </summary>
public static class LeaseIds
{
    public const int ShardCount = 16;
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    public static int ShardOf(string agentId)
    {
        // FNV-1a: stable across processes and versions, unlike string.GetHashCode.
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(agentId))
        {
            hash = unchecked((hash ^ b) * 16777619u);
        }

        return (int)(hash % ShardCount);
    }

    /// <summary>
    /// The lease id of an agent's task: the shard, then 130 bits of SHA-256 over (agent, task). One
    /// task has one lease id, so the id itself is the idempotency key: no task → lease index is
    /// stored, and a replayed BeginTask finds its lease by id. Ids are not secrets (every call
    /// checks that the lease belongs to the caller); they only must not collide.
    /// </summary>
    public static string For(string agentId, string taskId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("credbroker.lease.v1\n" + agentId + "\n" + taskId));
        var id = new StringBuilder("l", 30).Append(ShardOf(agentId).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)).Append('_');
        // 26 base32 characters carry 130 bits; the last character uses the remaining bits.
        var bits = 0;
        var buffer = 0;
        foreach (var b in hash.AsSpan(0, 16))
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                id.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            id.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }

        return id.ToString();
    }

    /// <summary>Throws unless <paramref name="lease"/> carries the id of its agent's task (stores rely on it for idempotency).</summary>
    public static void Require(Lease lease)
    {
        if (lease.LeaseId != For(lease.AgentId, lease.TaskId))
        {
            throw new ArgumentException($"Lease id {lease.LeaseId} is not LeaseIds.For('{lease.AgentId}', '{lease.TaskId}').", nameof(lease));
        }
    }

    /// <summary>Parses the shard out of an untrusted lease id; false for anything not shaped like one.</summary>
    public static bool TryGetShard(string? leaseId, out int shard)
    {
        shard = -1;
        if (leaseId is not { Length: 30 } || leaseId[0] != 'l' || leaseId[3] != '_')
        {
            return false;
        }

        foreach (var c in leaseId.AsSpan(4))
        {
            if (!Alphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return int.TryParse(leaseId.AsSpan(1, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out shard)
            && shard < ShardCount && leaseId.AsSpan(1, 2).SequenceEqual(shard.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
    }
}
