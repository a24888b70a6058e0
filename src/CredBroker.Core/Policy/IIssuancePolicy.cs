using CredBroker.Core.Agents;

namespace CredBroker.Core.Policy;

/// <summary>What an agent asks for when it begins a task, as policy sees it.</summary>
public sealed record TaskRequest(
    string AgentId, string TaskId, string Purpose, IReadOnlyList<string> Scopes, string? Audience,
    TimeSpan? LeaseTtl, IReadOnlyDictionary<string, string> Context);

public enum DecisionOutcome
{
    Allow,
    Deny,
    RequireApproval,
}

/// <summary>The answer to a request and why: every rule that fired is listed, allowed or not.</summary>
public sealed record Decision(
    DecisionOutcome Outcome, IReadOnlyList<string> GrantedScopes, string Audience, TimeSpan LeaseTtl,
    IReadOnlyList<string> RuleIds, string Reason);

/// <summary>Request-time policy. The skeleton's <see cref="AgentScopePolicy"/> is replaced by the full engine later.</summary>
public interface IIssuancePolicy
{
    Decision Decide(AgentDefinition agent, TaskRequest request);
}
