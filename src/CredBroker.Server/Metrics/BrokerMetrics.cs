using System.Diagnostics;
using System.Diagnostics.Metrics;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using Grpc.Core;

namespace CredBroker.Server.Metrics;

/// <summary>
/// The broker's metrics as System.Diagnostics.Metrics instruments on the <c>CredBroker</c> meter,
/// exported through OpenTelemetry (Prometheus text at <c>/metrics</c>, OTLP when configured;
/// docs/operations.md lists them). Token and lease counters are derived from audit events, so a
/// metric never disagrees with the audit trail; gRPC metrics come from the call interceptor; sweeps
/// and the revocation feed report here directly. Instrument names are the Prometheus series names.
/// </summary>
public sealed class BrokerMetrics : IAuditObserver, IRefusalObserver, IDisposable
{
    public const string MeterName = "CredBroker";

    public const string ActivitySourceName = "CredBroker.Store";

    /// <summary>Traces: one Activity per lease store and audit-log call (the request's activity is the parent).</summary>
    public static readonly ActivitySource Activities = new(ActivitySourceName);

    /// <summary>Seconds: 100 µs to 10 s.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _grpcRequests;
    private readonly Histogram<double> _grpcDuration;
    private readonly Counter<long> _tokensIssued;
    private readonly Counter<long> _tokensDenied;
    private readonly Counter<long> _leasesEnded;
    private readonly Counter<long> _agentActions;
    private readonly Counter<long> _operatorAuthFailures;
    private readonly Counter<long> _auditRecords;
    private readonly Counter<long> _auditFailures;
    private readonly Counter<long> _auditSinkFailures;
    private readonly Histogram<double> _auditAppendDuration;
    private readonly Histogram<double> _storeDuration;
    private readonly Counter<long> _sweeps;
    private readonly Histogram<double> _revocationFeedLag;
    private double _sweepLag;
    private long _activeLeases = -1;

    public BrokerMetrics()
    {
        _grpcRequests = _meter.CreateCounter<long>("credbroker_grpc_requests", description: "gRPC calls by full method and status code.");
        _grpcDuration = Seconds("credbroker_grpc_request_duration_seconds", "gRPC call duration (streaming calls: until the stream ends).");
        _tokensIssued = _meter.CreateCounter<long>("credbroker_tokens_issued", description: "Access tokens minted, by operation (begin_task, issue_token, renew_lease, approval).");
        _tokensDenied = _meter.CreateCounter<long>("credbroker_tokens_denied", description: "Token requests refused, by the deciding rule id (the last rule that fired).");
        _leasesEnded = _meter.CreateCounter<long>("credbroker_leases_ended", description: "Leases that ended, by final state (completed, expired, revoked).");
        _agentActions = _meter.CreateCounter<long>("credbroker_agent_actions", description: "Operator quarantines and releases that changed an agent.");
        _operatorAuthFailures = _meter.CreateCounter<long>("credbroker_operator_auth_failures", description: "Refused operator credentials on the operator listener.");
        _auditRecords = _meter.CreateCounter<long>("credbroker_audit_records", description: "Records appended to the audit chain by this replica, by event type.");
        _auditFailures = _meter.CreateCounter<long>("credbroker_audit_append_failures", description: "Audit appends that failed (the action was refused: fail closed).");
        _auditSinkFailures = _meter.CreateCounter<long>("credbroker_audit_sink_failures", description: "Failed writes to the JSON-lines audit file (the chain still has the record).");
        _auditAppendDuration = Seconds("credbroker_audit_append_duration_seconds", "Time to append one record to the audit chain (a Redis round trip in production).");
        _storeDuration = Seconds("credbroker_redis_latency_seconds", "Lease store round trips by operation.");
        _sweeps = _meter.CreateCounter<long>("credbroker_sweeps", description: "Sweeper passes by result (ok, error).");
        _revocationFeedLag = Seconds("credbroker_revocation_feed_lag_seconds", "Age of a revocation event when WatchRevocations delivered it to a validator.");
        _meter.CreateObservableGauge("credbroker_sweep_lag_seconds", () => Volatile.Read(ref _sweepLag), unit: "s",
            description: "How long after its deadline the latest lease expired by the last sweep was recorded expired.");
        _meter.CreateObservableGauge("credbroker_active_leases", ActiveLeases,
            description: "Open leases in the expiry index (all replicas), refreshed in the background.");
    }

    /// <summary>One finished gRPC call (streaming calls: when the stream ends).</summary>
    public void RecordCall(string method, StatusCode code, TimeSpan elapsed)
    {
        var methodTag = new KeyValuePair<string, object?>("method", method);
        _grpcRequests.Add(1, methodTag, new KeyValuePair<string, object?>("code", code.ToString()));
        _grpcDuration.Record(elapsed.TotalSeconds, methodTag);
    }

    public void RecordStoreCall(string operation, TimeSpan elapsed) =>
        _storeDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("operation", operation));

    public void RecordRevocationDelivered(TimeSpan age) => _revocationFeedLag.Record(Math.Max(0, age.TotalSeconds));

    /// <summary>The open lease count the gauge reports (set by <see cref="ActiveLeaseCounter"/>; null = unknown, no sample).</summary>
    public void SetActiveLeases(long? count) => Interlocked.Exchange(ref _activeLeases, count ?? -1);

    public void Swept(SweepResult result)
    {
        _sweeps.Add(1, new KeyValuePair<string, object?>("result", "ok"));
        if (result.Expired > 0)
        {
            Volatile.Write(ref _sweepLag, Math.Max(0, result.MaxLag.TotalSeconds));
        }
    }

    public void SweepFailed() => _sweeps.Add(1, new KeyValuePair<string, object?>("result", "error"));

    /// <summary>A refusal counted into an aggregated audit summary instead of its own record: counted here at once.</summary>
    public void Suppressed(AuditEvent auditEvent)
    {
        switch (auditEvent.Type)
        {
            case AuditEventType.TokenDenied:
                _tokensDenied.Add(1, new KeyValuePair<string, object?>("reason", auditEvent.RuleIds.LastOrDefault() ?? "unspecified"));
                break;
            case AuditEventType.OperatorAuthFailed:
                _operatorAuthFailures.Add(1);
                break;
        }
    }

    public void Appended(AuditRecord record, AuditEvent auditEvent, TimeSpan elapsed)
    {
        _auditRecords.Add(1, new KeyValuePair<string, object?>("type", auditEvent.Type.ToWire()));
        _auditAppendDuration.Record(elapsed.TotalSeconds);
        var changed = auditEvent.Details.GetValueOrDefault("changed") != "false";
        switch (auditEvent.Type)
        {
            case AuditEventType.TokenMinted:
            case AuditEventType.LeaseRenewed:
                _tokensIssued.Add(1, new KeyValuePair<string, object?>("operation", auditEvent.Details.GetValueOrDefault("operation") ?? "unknown"));
                break;
            case AuditEventType.TokenDenied when !auditEvent.Details.ContainsKey("aggregated"):
                _tokensDenied.Add(1, new KeyValuePair<string, object?>("reason", auditEvent.RuleIds.LastOrDefault() ?? "unspecified"));
                break;
            case AuditEventType.LeaseCompleted when changed:
                _leasesEnded.Add(1, new KeyValuePair<string, object?>("state", "completed"));
                break;
            case AuditEventType.LeaseExpired:
                _leasesEnded.Add(1, new KeyValuePair<string, object?>("state", "expired"));
                break;
            case AuditEventType.LeaseRevoked when changed:
                _leasesEnded.Add(1, new KeyValuePair<string, object?>("state", "revoked"));
                break;
            case AuditEventType.AgentQuarantined:
                _agentActions.Add(1, new KeyValuePair<string, object?>("action", "quarantine"));
                break;
            case AuditEventType.AgentReleased when changed:
                _agentActions.Add(1, new KeyValuePair<string, object?>("action", "release"));
                break;
            case AuditEventType.OperatorAuthFailed when !auditEvent.Details.ContainsKey("aggregated"):
                _operatorAuthFailures.Add(1);
                break;
        }
    }

    public void AppendFailed(AuditEvent auditEvent, Exception error) => _auditFailures.Add(1);

    public void SinkFailed(Exception error) => _auditSinkFailures.Add(1);

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<long>> ActiveLeases() =>
        Interlocked.Read(ref _activeLeases) is var count and >= 0 ? [new Measurement<long>(count)] : [];

    private Histogram<double> Seconds(string name, string description) =>
        _meter.CreateHistogram(name, unit: "s", description: description, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
}
