using System.Collections.Concurrent;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>One call a client made: what it was, to which replica, when, and what it was told.</summary>
/// <param name="Detail">The status detail of a refusal (null when OK).</param>
public sealed record CallRecord(string Kind, string Broker, DateTimeOffset Sent, DateTimeOffset Answered, StatusCode Status, string? Detail = null);

/// <summary>A token a client was given (an acknowledged BeginTask, IssueToken or RenewLease).</summary>
public sealed record TokenRecord(string LeaseId, string AgentId, string Token, string Jti, DateTimeOffset Acked, DateTimeOffset Expires);

/// <summary>An Introspect answer a client got.</summary>
public sealed record IntrospectionRecord(TokenRecord Token, string Broker, DateTimeOffset Sent, DateTimeOffset Answered, bool Active);

/// <summary>An offline validation: the validator's verdict and when its revocation feed last spoke.</summary>
public sealed record ValidationRecord(TokenRecord Token, DateTimeOffset At, bool Valid, DateTimeOffset CurrentAsOf);

/// <summary>What a client was told about one lease.</summary>
public sealed class LeaseRecord(string leaseId, string agentId, DateTimeOffset opened, DateTimeOffset deadline)
{
    public string LeaseId { get; } = leaseId;

    public string AgentId { get; } = agentId;

    /// <summary>When BeginTask was acknowledged.</summary>
    public DateTimeOffset Opened { get; } = opened;

    /// <summary>The latest acknowledged deadline (BeginTask, then RenewLease).</summary>
    public DateTimeOffset Deadline { get; set; } = deadline;

    /// <summary>The first end the client sent (CompleteTask or RevokeLease), acknowledged or not: after it, "inactive" is expected.</summary>
    public DateTimeOffset? EndSent { get; set; }

    /// <summary>The acknowledged end: its kind ("completed", "revoked") and when the acknowledgement arrived.</summary>
    public (string State, DateTimeOffset At)? EndAcked { get; set; }
}

/// <summary>A quarantine the operator asked for: sent, acknowledged (or not), released.</summary>
public sealed record QuarantineRecord(string AgentId, DateTimeOffset Sent, DateTimeOffset? Acked);

/// <summary>A fault the nemesis injected, from injection to heal.</summary>
public sealed record FaultRecord(string Kind, DateTimeOffset Start, DateTimeOffset End);

/// <summary>The independent history of one run: every acknowledged call with its result and time.</summary>
public sealed class History
{
    public ConcurrentQueue<CallRecord> Calls { get; } = new();

    public ConcurrentQueue<TokenRecord> Tokens { get; } = new();

    public ConcurrentDictionary<string, LeaseRecord> Leases { get; } = new();

    public ConcurrentQueue<IntrospectionRecord> Introspections { get; } = new();

    public ConcurrentQueue<ValidationRecord> Validations { get; } = new();

    public ConcurrentQueue<QuarantineRecord> Quarantines { get; } = new();

    public ConcurrentQueue<FaultRecord> Faults { get; } = new();

    /// <summary>Approvals: what the agents and the operator were told (ChaosRun.Approvals.cs).</summary>
    public ApprovalHistory Approvals { get; } = new();

    /// <summary>Validator staleness after a stream cut: from restore to rejecting a token revoked during the cut.</summary>
    public ConcurrentQueue<TimeSpan> ValidatorCatchUp { get; } = new();

    /// <summary>What went wrong outside the invariants (a replica that did not come back after a restart, ...).</summary>
    public ConcurrentQueue<string> Findings { get; } = new();

    /// <summary>Stream restores after which the validator did not reject the token revoked during the cut within the bound.</summary>
    public ConcurrentQueue<string> ValidatorMisses { get; } = new();
}
