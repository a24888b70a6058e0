using System.Diagnostics;
using CredBroker.Core.Audit;

namespace CredBroker.Server.Metrics;

/// <summary>
/// Traces every audit-log round trip as an Activity (<c>audit.append</c>, <c>audit.read</c>, ...) on
/// the same source as the lease store's, when a tracer listens; append latency is already measured
/// by <see cref="BrokerMetrics"/> through the audit service.
/// </summary>
public sealed class TracedAuditLog(IAuditLog inner) : IAuditLog
{
    public Task<AuditRecord> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken) =>
        Trace("audit.append", () => inner.AppendAsync(auditEvent, cancellationToken));

    public Task<IReadOnlyList<AuditRecord>> ReadAsync(string? afterPosition, int limit, CancellationToken cancellationToken) =>
        Trace("audit.read", () => inner.ReadAsync(afterPosition, limit, cancellationToken));

    public Task<AuditLogState> GetStateAsync(CancellationToken cancellationToken) =>
        Trace("audit.state", () => inner.GetStateAsync(cancellationToken));

    public Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(CancellationToken cancellationToken) =>
        Trace("audit.checkpoints", () => inner.ReadCheckpointsAsync(cancellationToken));

    private static async Task<T> Trace<T>(string name, Func<Task<T>> call)
    {
        using var activity = BrokerMetrics.Activities.StartActivity(name, ActivityKind.Client);
        try
        {
            return await call();
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            throw;
        }
    }
}
