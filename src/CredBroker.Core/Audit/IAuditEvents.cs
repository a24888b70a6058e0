namespace CredBroker.Core.Audit;

/// <summary>
/// The one way use cases record what they did (IdentityServer's IEventService shape). Raising
/// appends to the audit chain before the caller returns; when that fails it throws a
/// <c>BrokerException</c> of kind Unavailable and the caller must not complete its action.
/// </summary>
public interface IAuditEvents
{
    Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken);
}

/// <summary>Told about every append (metrics, follow-mode wake-ups). Must not throw or block.</summary>
public interface IAuditObserver
{
    void Appended(AuditRecord record, AuditEvent auditEvent, TimeSpan elapsed);

    void AppendFailed(AuditEvent auditEvent, Exception error);

    void SinkFailed(Exception error);
}

/// <summary>A secondary copy of appended records (e.g. a JSON-lines file a SIEM ships). Best effort: the chain is the record.</summary>
public interface IAuditSink
{
    Task WriteAsync(AuditRecord record, CancellationToken cancellationToken);
}
