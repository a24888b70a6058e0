namespace CredBroker.Core.Audit;

/// <summary>
/// One auditable fact: who (caller, operator) did what (type, outcome) to which agent, task and
/// lease, with which scopes, and which rules decided. Never carries a token or key: a minted token
/// is identified by its <c>jti</c> in <see cref="Details"/>.
/// </summary>
public sealed record AuditEvent
{
    /// <summary>An event about <paramref name="lease"/>: its agent, owner, task, id, audience and scopes.</summary>
    public static AuditEvent ForLease(AuditEventType type, Leases.Lease lease, DateTimeOffset time) => new()
    {
        Type = type,
        Time = time,
        AgentId = lease.AgentId,
        Owner = lease.Owner,
        TaskId = lease.TaskId,
        LeaseId = lease.LeaseId,
        Audience = lease.Audience,
        ScopesGranted = lease.Scopes,
    };

    public required AuditEventType Type { get; init; }

    public required DateTimeOffset Time { get; init; }

    public string AgentId { get; init; } = "";

    public string Owner { get; init; } = "";

    public string TaskId { get; init; } = "";

    public string LeaseId { get; init; } = "";

    public string Audience { get; init; } = "";

    public IReadOnlyList<string> ScopesRequested { get; init; } = [];

    public IReadOnlyList<string> ScopesGranted { get; init; } = [];

    /// <summary>The policy rules that decided (allowed, narrowed, denied or required approval).</summary>
    public IReadOnlyList<string> RuleIds { get; init; } = [];

    /// <summary>The authenticated workload that made the call, e.g. <c>triage-agent (workload-jwt)</c>.</summary>
    public string Caller { get; init; } = "";

    /// <summary>The authenticated operator behind an operator action.</summary>
    public string Operator { get; init; } = "";

    /// <summary>Why: the denial message, the revocation reason, the approval comment.</summary>
    public string Reason { get; init; } = "";

    /// <summary>Type-specific facts (token id, expiry, approval id, key id, …); never secrets.</summary>
    public IReadOnlyDictionary<string, string> Details { get; init; } = new Dictionary<string, string>();
}
