using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Metrics;

/// <summary>
/// The broker's metrics (docs/operations.md lists them). Token and lease counters are derived from
/// audit events, so a metric never disagrees with the audit trail; gRPC metrics come from an
/// interceptor; sweeps and the revocation feed report here directly.
/// </summary>
public sealed class BrokerMetrics : IAuditObserver
{
    public BrokerMetrics(MetricsRegistry registry)
    {
        Registry = registry;
        GrpcRequests = registry.Counter("credbroker_grpc_requests_total", "gRPC calls by full method and status code.", "method", "code");
        GrpcDuration = registry.Histogram("credbroker_grpc_request_duration_seconds", "gRPC call duration (streaming calls: until the stream ends).", Histogram.LatencyBuckets, "method");
        TokensIssued = registry.Counter("credbroker_tokens_issued_total", "Access tokens minted, by operation (begin_task, issue_token, renew_lease).", "operation");
        TokensDenied = registry.Counter("credbroker_tokens_denied_total", "Token requests refused, by the deciding rule id (the last rule that fired).", "reason");
        LeasesEnded = registry.Counter("credbroker_leases_ended_total", "Leases that ended, by final state (completed, expired, revoked).", "state");
        AgentActions = registry.Counter("credbroker_agent_actions_total", "Operator quarantines and releases that changed an agent.", "action");
        OperatorAuthFailures = registry.Counter("credbroker_operator_auth_failures_total", "Refused operator credentials on the operator listener.");
        AuditRecords = registry.Counter("credbroker_audit_records_total", "Records appended to the audit chain by this replica, by event type.", "type");
        AuditFailures = registry.Counter("credbroker_audit_append_failures_total", "Audit appends that failed (the action was refused: fail closed).");
        AuditSinkFailures = registry.Counter("credbroker_audit_sink_failures_total", "Failed writes to the JSON-lines audit file (the chain still has the record).");
        AuditAppendDuration = registry.Histogram("credbroker_audit_append_duration_seconds", "Time to append one record to the audit chain (a Redis round trip in production).", Histogram.LatencyBuckets);
        StoreDuration = registry.Histogram("credbroker_redis_latency_seconds", "Lease store round trips by operation.", Histogram.LatencyBuckets, "operation");
        SweepLag = registry.Gauge("credbroker_sweep_lag_seconds", "How long after its deadline the latest lease expired by the last sweep was recorded expired.");
        Sweeps = registry.Counter("credbroker_sweeps_total", "Sweeper passes by result (ok, error).", "result");
        RevocationFeedLag = registry.Histogram("credbroker_revocation_feed_lag_seconds", "Age of a revocation event when WatchRevocations delivered it to a validator.", Histogram.LatencyBuckets);
        SweepLag.Set(0);
    }

    public MetricsRegistry Registry { get; }

    public Counter GrpcRequests { get; }

    public Histogram GrpcDuration { get; }

    public Counter TokensIssued { get; }

    public Counter TokensDenied { get; }

    public Counter LeasesEnded { get; }

    public Counter AgentActions { get; }

    public Counter OperatorAuthFailures { get; }

    public Counter AuditRecords { get; }

    public Counter AuditFailures { get; }

    public Counter AuditSinkFailures { get; }

    public Histogram AuditAppendDuration { get; }

    public Histogram StoreDuration { get; }

    public Gauge SweepLag { get; }

    public Counter Sweeps { get; }

    public Histogram RevocationFeedLag { get; }

    /// <summary>Counts every call by method and final status, and times it.</summary>
    /// <summary>One finished gRPC call (streaming calls: when the stream ends).</summary>
    public void RecordCall(string method, StatusCode code, TimeSpan elapsed)
    {
        GrpcRequests.Inc(method, code.ToString());
        GrpcDuration.Observe(elapsed.TotalSeconds, method);
    }

    public void Swept(SweepResult result)
    {
        Sweeps.Inc("ok");
        if (result.Expired > 0)
        {
            SweepLag.Set(Math.Max(0, result.MaxLag.TotalSeconds));
        }
    }

    public void SweepFailed() => Sweeps.Inc("error");

    public void Appended(AuditRecord record, AuditEvent auditEvent, TimeSpan elapsed)
    {
        AuditRecords.Inc(auditEvent.Type.ToWire());
        AuditAppendDuration.Observe(elapsed.TotalSeconds);
        var changed = auditEvent.Details.GetValueOrDefault("changed") != "false";
        switch (auditEvent.Type)
        {
            case AuditEventType.TokenMinted:
            case AuditEventType.LeaseRenewed:
                TokensIssued.Inc(auditEvent.Details.GetValueOrDefault("operation") ?? "unknown");
                break;
            case AuditEventType.TokenDenied:
                TokensDenied.Inc(auditEvent.RuleIds.LastOrDefault() ?? "unspecified");
                break;
            case AuditEventType.LeaseCompleted when changed:
                LeasesEnded.Inc("completed");
                break;
            case AuditEventType.LeaseExpired:
                LeasesEnded.Inc("expired");
                break;
            case AuditEventType.LeaseRevoked when changed:
                LeasesEnded.Inc("revoked");
                break;
            case AuditEventType.AgentQuarantined:
                AgentActions.Inc("quarantine");
                break;
            case AuditEventType.AgentReleased when changed:
                AgentActions.Inc("release");
                break;
            case AuditEventType.OperatorAuthFailed:
                OperatorAuthFailures.Inc();
                break;
        }
    }

    public void AppendFailed(AuditEvent auditEvent, Exception error) => AuditFailures.Inc();

    public void SinkFailed(Exception error) => AuditSinkFailures.Inc();
}
