using System.Diagnostics;
using CredBroker.Core.Broker;

namespace CredBroker.Core.Audit;

/// <summary>
/// Appends raised events to the chain, then copies them to the sinks and tells the observers.
/// Fails closed: an append that fails becomes an Unavailable refusal the use case propagates.
/// </summary>
public sealed class AuditService(IAuditLog log, IReadOnlyList<IAuditSink>? sinks = null, IReadOnlyList<IAuditObserver>? observers = null) : IAuditEvents
{
    private readonly IReadOnlyList<IAuditSink> _sinks = sinks ?? [];
    private readonly List<IAuditObserver> _observers = [.. observers ?? []];

    public IAuditLog Log => log;

    /// <summary>Adds an observer; call while composing, before events are raised.</summary>
    public void Observe(IAuditObserver observer) => _observers.Add(observer);

    public async Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        AuditRecord record;
        try
        {
            record = await log.AppendAsync(auditEvent, cancellationToken);
        }
        catch (AuditUnavailableException e)
        {
            _observers.ForEach(o => o.AppendFailed(auditEvent, e));
            throw new BrokerException(BrokerErrorKind.Unavailable,
                $"The audit log is unavailable ({e.Message}); the {auditEvent.Type.ToWire()} cannot be recorded, so it is refused. Retry with backoff.", null, e);
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        foreach (var sink in _sinks)
        {
            try
            {
                await sink.WriteAsync(record, cancellationToken);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _observers.ForEach(o => o.SinkFailed(e));
            }
        }

        _observers.ForEach(o => o.Appended(record, auditEvent, elapsed));
        return record;
    }
}
