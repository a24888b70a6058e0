using CredBroker.Core.Leases;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>A lease as a Redis hash: times in unix milliseconds, scopes space-separated.</summary>
internal static class LeaseHash
{
    /// <summary>ARGV[2..] of the open script: field/value pairs.</summary>
    public static RedisValue[] ToArgs(Lease l) =>
    [
        "agent", l.AgentId, "task", l.TaskId, "owner", l.Owner, "purpose", l.Purpose, "aud", l.Audience,
        "scopes", string.Join(' ', l.Scopes), "state", l.State.ToWire(), "created", l.CreatedAt.ToUnixTimeMilliseconds(),
        "deadline", l.Deadline.ToUnixTimeMilliseconds(), "max_deadline", l.MaxDeadline.ToUnixTimeMilliseconds(), "gen", l.Generation,
    ];

    public static Lease FromEntries(string leaseId, HashEntry[] entries)
    {
        var f = entries.ToDictionary(e => (string)e.Name!, e => e.Value);
        return new Lease
        {
            LeaseId = leaseId,
            AgentId = f["agent"]!,
            TaskId = f["task"]!,
            Owner = f["owner"]!,
            Purpose = f["purpose"]!,
            Audience = f["aud"]!,
            Scopes = ((string)f["scopes"]!).Split(' ', StringSplitOptions.RemoveEmptyEntries),
            State = LeaseStateNames.FromWire(f["state"]!),
            CreatedAt = Time(f["created"]),
            Deadline = Time(f["deadline"]),
            MaxDeadline = Time(f["max_deadline"]),
            Generation = (long)f["gen"],
            EndedAt = f.TryGetValue("ended", out var ended) ? Time(ended) : null,
        };
    }

    private static DateTimeOffset Time(RedisValue ms) => DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
}
