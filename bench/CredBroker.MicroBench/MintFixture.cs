using CredBroker.Core.Agents;
using CredBroker.Core.Leases;

namespace CredBroker.MicroBench;

/// <summary>The agent, request and lease the micro-benchmarks share: the same shape bench/run.sh mints.</summary>
internal static class MintFixture
{
    public static AgentDefinition Agent { get; } = new()
    {
        Id = "bench-agent",
        Owner = "bench@example.com",
        Purpose = "benchmark the mint path",
        Audiences = ["tickets-api"],
        AllowedScopes = new HashSet<string>(StringComparer.Ordinal) { "tickets:read", "tickets:comment" },
        DisallowedScopes = new HashSet<string>(StringComparer.Ordinal) { "tickets:delete" },
        ApprovalScopes = new HashSet<string>(StringComparer.Ordinal) { "tickets:export" },
        MaxTokenTtl = TimeSpan.FromMinutes(5),
        DefaultLeaseTtl = TimeSpan.FromMinutes(10),
        MaxLeaseLifetime = TimeSpan.FromMinutes(30),
    };

    public static Lease Lease(string taskId, DateTimeOffset now) => new()
    {
        LeaseId = LeaseIds.For(Agent.Id, taskId),
        AgentId = Agent.Id,
        TaskId = taskId,
        Owner = Agent.Owner,
        Purpose = Agent.Purpose,
        Audience = "tickets-api",
        Scopes = ["tickets:read"],
        State = LeaseState.Active,
        CreatedAt = now,
        Deadline = now + Agent.DefaultLeaseTtl,
        MaxDeadline = now + Agent.MaxLeaseLifetime,
    };
}
