namespace CredBroker.Core.Audit;

/// <summary>A filter over the audit trail; empty members match everything.</summary>
public sealed record AuditQuery
{
    public const int MaxTypes = 32;

    public string? AgentId { get; init; }

    public string? Owner { get; init; }

    public string? TaskId { get; init; }

    public string? LeaseId { get; init; }

    public IReadOnlySet<AuditEventType> Types { get; init; } = new HashSet<AuditEventType>();

    public DateTimeOffset? Since { get; init; }

    public DateTimeOffset? Until { get; init; }

    /// <summary>Only records with a larger sequence number (resume after the last one seen).</summary>
    public long AfterSequence { get; init; }

    public bool Matches(AuditRecord record, AuditEvent e) =>
        record.Sequence > AfterSequence
        && (AgentId is null || e.AgentId == AgentId)
        && (Owner is null || e.Owner == Owner)
        && (TaskId is null || e.TaskId == TaskId)
        && (LeaseId is null || e.LeaseId == LeaseId)
        && (Types.Count == 0 || Types.Contains(e.Type))
        && (Since is null || e.Time >= Since)
        && (Until is null || e.Time < Until);
}
