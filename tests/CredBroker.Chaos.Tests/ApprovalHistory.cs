using System.Collections.Concurrent;

namespace CredBroker.Chaos.Tests;

/// <summary>One message an agent got on a WatchApproval stream (or the answer to a repeated BeginTask).</summary>
public sealed record ApprovalStatusSeen(int Stream, string Broker, string State, bool HasToken, DateTimeOffset At);

/// <summary>A token an agent received for an approval: the token, and how (<c>watch</c> or <c>begin_task.replay</c>).</summary>
public sealed record ApprovalToken(TokenRecord Token, string Via, DateTimeOffset At);

/// <summary>What an agent was told about one request that needed a human: from the pending BeginTask to its token or refusal.</summary>
public sealed class ApprovalRecord(string approvalId, string agentId, string taskId, IReadOnlyList<string> requested, DateTimeOffset acked, DateTimeOffset pendingDeadline)
{
    public string ApprovalId { get; } = approvalId;

    public string AgentId { get; } = agentId;

    public string TaskId { get; } = taskId;

    /// <summary>The scopes awaiting approval (BeginTask's granted_scopes while pending).</summary>
    public IReadOnlyList<string> Requested { get; } = requested;

    /// <summary>When the pending BeginTask was acknowledged.</summary>
    public DateTimeOffset Acked { get; } = acked;

    /// <summary>When the approval expires (BeginTask's lease_deadline while pending).</summary>
    public DateTimeOffset PendingDeadline { get; } = pendingDeadline;

    public ConcurrentQueue<ApprovalStatusSeen> Statuses { get; } = new();

    public ConcurrentQueue<ApprovalToken> Tokens { get; } = new();

    /// <summary>Watch streams opened (a reconnect opens another, on a random replica).</summary>
    public int Streams { get; set; }

    /// <summary>Watch streams that failed (broker killed or paused, Redis away) before a decision arrived.</summary>
    public int Cuts { get; set; }

    /// <summary>How the agent's wait ended: <c>token</c>, a refusal (<c>denied</c>, <c>expired</c>, <c>revoked</c>, <c>withdrawn</c>, <c>approved-ended</c>, <c>failed_precondition</c>) or <c>gave up</c>.</summary>
    public string? Outcome { get; set; }

    public DateTimeOffset? OutcomeAt { get; set; }
}

/// <summary>What the operator loop decided for one approval and what it was told.</summary>
public sealed class DecisionRecord(string approvalId, string agentId, string plan, IReadOnlyList<string> requested)
{
    public string ApprovalId { get; } = approvalId;

    public string AgentId { get; } = agentId;

    /// <summary><c>approve</c>, <c>approve-narrowed</c>, <c>deny</c> or <c>expire</c> (left to time out).</summary>
    public string Plan { get; } = plan;

    public IReadOnlyList<string> Requested { get; } = requested;

    /// <summary>APPROVE: the scopes sent (empty = all requested).</summary>
    public IReadOnlyList<string> Scopes { get; init; } = [];

    /// <summary>When a DecideApproval was first sent (acknowledged or not).</summary>
    public DateTimeOffset? FirstSent { get; set; }

    /// <summary>The acknowledged decision: when, and the approval as the answer described it.</summary>
    public (DateTimeOffset At, string State, IReadOnlyList<string> Granted)? Acked { get; set; }

    /// <summary>A decision whose outcome is unknown (the call failed UNAVAILABLE or timed out) was sent.</summary>
    public bool Unknown { get; set; }

    /// <summary>DecideApproval answered FAILED_PRECONDITION / NOT_FOUND (decided or expired meanwhile): the operator stopped.</summary>
    public string? Refused { get; set; }

    public bool Done { get; set; }
}

/// <summary>The approvals part of the history.</summary>
public sealed class ApprovalHistory
{
    public ConcurrentDictionary<string, ApprovalRecord> Requests { get; } = new();

    public ConcurrentDictionary<string, DecisionRecord> Decisions { get; } = new();

    /// <summary>What the agents saw that breaks the approval contract at once (e.g. a status after a terminal one).</summary>
    public ConcurrentQueue<string> Violations { get; } = new();

    /// <summary>ListApprovals pages answered with partial results (a lost cluster master): when, and the shards they named.</summary>
    public ConcurrentQueue<(DateTimeOffset At, string Shards)> PartialPages { get; } = new();
}
