using CredBroker.Core.Leases;

namespace CredBroker.Redis.Tests;

/// <summary>Leases for the Redis-only tests (the contract suites have their own).</summary>
internal static class TestLeases
{
    public static Lease New(string agent = "agent-a", TimeSpan? ttl = null)
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var task = "task-" + Guid.NewGuid().ToString("N");
        return new Lease
        {
            LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "owner@example.com", Purpose = "redis test",
            Audience = "api", Scopes = ["read"], CreatedAt = now, Deadline = now.Add(ttl ?? TimeSpan.FromMinutes(5)), MaxDeadline = now.AddMinutes(10),
            State = LeaseState.Active,
        };
    }

    /// <summary>Retries while the store is unavailable (the multiplexer connects in the background), within 20 s.</summary>
    public static async Task<T> WhenAvailable<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (CredBroker.Core.Broker.StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }
}
