using CredBroker.Core.Agents;

namespace CredBroker.Core.Policy;

/// <summary>What an agent asks for when it begins a task, as policy sees it.</summary>
public sealed record TaskRequest(
    string AgentId, string TaskId, string Purpose, IReadOnlyList<string> Scopes, string? Audience,
    TimeSpan? LeaseTtl, IReadOnlyDictionary<string, string> Context)
{
    /// <summary>What the agent already holds: its other active leases (for toxic combinations across tasks).</summary>
    public IReadOnlyList<HeldLease> Holdings { get; init; } = [];
}

/// <summary>An active lease's scopes, as the toxic-combination check sees them.</summary>
public sealed record HeldLease(string LeaseId, string TaskId, IReadOnlyList<string> Scopes);

public enum DecisionOutcome
{
    Allow,
    Deny,
    RequireApproval,
}

/// <summary>
/// The answer to a request and why: every rule that had an effect is listed in
/// <see cref="RuleIds"/> in pipeline order, allowed or not. <see cref="GrantedScopes"/> are
/// concrete and sorted; on <see cref="DecisionOutcome.RequireApproval"/> they are what a human
/// is asked to approve, <see cref="ApprovalScopes"/> the ones that need it.
/// </summary>
public sealed record Decision(
    DecisionOutcome Outcome, IReadOnlyList<string> GrantedScopes, string Audience, TimeSpan LeaseTtl,
    IReadOnlyList<string> RuleIds, string Reason)
{
    /// <summary>Requested scopes a rule dropped (narrowing).</summary>
    public IReadOnlyList<string> DroppedScopes { get; init; } = [];

    public IReadOnlyList<string> ApprovalScopes { get; init; } = [];

    /// <summary>A cap on the lease's whole lifetime lower than the agent's (from a context rule); null = the agent's.</summary>
    public TimeSpan? MaxLeaseLifetime { get; init; }

    /// <summary>Every rule evaluated and what it did (filled for explanations only).</summary>
    public IReadOnlyList<DecisionStep> Steps { get; init; } = [];
}

/// <summary>One rule's part in a decision: <c>pass</c>, <c>allow</c>, <c>narrow</c>, <c>approval</c> or <c>deny</c>.</summary>
public sealed record DecisionStep(string RuleId, string Effect, string Detail);

/// <summary>Request-time policy.</summary>
public interface IIssuancePolicy
{
    /// <summary>The policy in force (settings, global rules).</summary>
    PolicyDocument Current { get; }

    Decision Decide(AgentDefinition agent, TaskRequest request);
}
