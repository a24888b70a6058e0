using CredBroker.Core.Audit;

namespace CredBroker.Server.Audit;

/// <summary>Wakes QueryAudit followers when this replica appends; records appended by other replicas arrive by their poll.</summary>
public sealed class AuditFollow : IAuditObserver
{
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next append after this call. Take it before reading, so no append is missed.</summary>
    public Task NextAppend => Volatile.Read(ref _appended).Task;

    public void Appended(AuditRecord record, AuditEvent auditEvent, TimeSpan elapsed) =>
        Interlocked.Exchange(ref _appended, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    public void AppendFailed(AuditEvent auditEvent, Exception error)
    {
    }

    public void SinkFailed(Exception error)
    {
    }
}
