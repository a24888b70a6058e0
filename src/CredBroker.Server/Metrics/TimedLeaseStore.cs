using System.Diagnostics;
using CredBroker.Core.Leases;

namespace CredBroker.Server.Metrics;

/// <summary>
/// Times every lease store round trip into <c>credbroker_redis_latency_seconds{operation}</c>, failures
/// included, and traces it as an Activity (<c>store.{operation}</c>) when a tracer listens.
/// </summary>
public sealed class TimedLeaseStore(ILeaseStore inner, BrokerMetrics metrics) : ILeaseStore, IOpenLeaseCount
{
    public ILeaseStore Inner => inner;

    public Task<LeaseOpenResult> OpenAsync(Lease lease, LeaseQuota quota, CancellationToken cancellationToken) =>
        Time("open", () => inner.OpenAsync(lease, quota, cancellationToken));

    public Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken) =>
        Time("get", () => inner.GetAsync(leaseId, cancellationToken));

    public Task<Lease?> FindByTaskAsync(string agentId, string taskId, CancellationToken cancellationToken) =>
        Time("find_by_task", () => inner.FindByTaskAsync(agentId, taskId, cancellationToken));

    public Task<LeaseTransition> ApproveAsync(
        string leaseId, IReadOnlyList<string> scopes, DateTimeOffset deadline, string decidedBy, string note, DateTimeOffset now, long? expectedGeneration,
        CancellationToken cancellationToken, IReadOnlyList<ToxicGuard>? toxicGuards = null) =>
        Time("approve", () => inner.ApproveAsync(leaseId, scopes, deadline, decidedBy, note, now, expectedGeneration, cancellationToken, toxicGuards));

    public Task<IReadOnlyList<Lease>> ListOpenLeasesAsync(string agentId, DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        Time("list_open", () => inner.ListOpenLeasesAsync(agentId, now, limit, cancellationToken));

    public Task<LeaseTransition> AddChildAsync(string parentLeaseId, string childLeaseId, DateTimeOffset now, CancellationToken cancellationToken) =>
        Time("add_child", () => inner.AddChildAsync(parentLeaseId, childLeaseId, now, cancellationToken));

    public Task<IReadOnlyList<string>> GetChildrenAsync(string leaseId, CancellationToken cancellationToken) =>
        Time("get_children", () => inner.GetChildrenAsync(leaseId, cancellationToken));

    public Task<LeaseTransition> CompleteAsync(string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        Time("complete", () => inner.CompleteAsync(leaseId, agentId, now, expectedGeneration, cancellationToken));

    public Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        Time("renew", () => inner.RenewAsync(leaseId, newDeadline, now, expectedGeneration, cancellationToken));

    public Task<LeaseTransition> RevokeAsync(string leaseId, string reason, string actor, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        Time("revoke", () => inner.RevokeAsync(leaseId, reason, actor, now, expectedGeneration, cancellationToken));

    public Task<ExpiryClaim> ClaimExpiredAsync(int shard, DateTimeOffset now, int limit, CancellationToken cancellationToken) =>
        Time("claim_expired", () => inner.ClaimExpiredAsync(shard, now, limit, cancellationToken));

    public Task ConfirmExpiredAsync(int shard, IReadOnlyList<ExpiredLease> recorded, CancellationToken cancellationToken) =>
        Time("confirm_expired", async () =>
        {
            await inner.ConfirmExpiredAsync(shard, recorded, cancellationToken);
            return true;
        });

    public Task<int> QuarantineAgentAsync(string agentId, string reason, string actor, DateTimeOffset now, CancellationToken cancellationToken) =>
        Time("quarantine", () => inner.QuarantineAgentAsync(agentId, reason, actor, now, cancellationToken));

    public Task<bool> ReleaseAgentAsync(string agentId, string actor, DateTimeOffset now, CancellationToken cancellationToken) =>
        Time("release", () => inner.ReleaseAgentAsync(agentId, actor, now, cancellationToken));

    public Task<DateTimeOffset?> GetAgentStatusAsync(string agentId, CancellationToken cancellationToken) =>
        Time("agent_status", () => inner.GetAgentStatusAsync(agentId, cancellationToken));

    public Task<RevocationPage> ReadRevocationsAsync(RevocationCursor? after, int limit, CancellationToken cancellationToken) =>
        Time("read_revocations", () => inner.ReadRevocationsAsync(after, limit, cancellationToken));

    public Task<RevocationCursor> CurrentRevocationCursorAsync(CancellationToken cancellationToken) =>
        Time("revocation_tail", () => inner.CurrentRevocationCursorAsync(cancellationToken));

    public Task<LeasePage> ListLeasesAsync(LeaseQuery query, DateTimeOffset now, CancellationToken cancellationToken) =>
        Time("list", () => inner.ListLeasesAsync(query, now, cancellationToken));

    public Task<long> CountOpenAsync(CancellationToken cancellationToken) =>
        inner is IOpenLeaseCount count ? Time("count_open", () => count.CountOpenAsync(cancellationToken)) : Task.FromException<long>(new NotSupportedException());

    private async Task<T> Time<T>(string operation, Func<Task<T>> call)
    {
        using var activity = BrokerMetrics.Activities.StartActivity("store." + operation, ActivityKind.Client);
        var started = Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            throw;
        }
        finally
        {
            metrics.RecordStoreCall(operation, Stopwatch.GetElapsedTime(started));
        }
    }
}
