namespace CredBroker.Core.Policy;

/// <summary>
/// One step of the decision pipeline. Rules run in order over one <see cref="PolicyEvaluation"/>;
/// each may pass, allow, narrow (drop scopes, cap ttl), require approval or deny, and the first
/// deny ends the pipeline. The list is replaceable (<see cref="PolicyEngine"/>).
/// </summary>
public interface IPolicyRule
{
    /// <summary>The rule id reported in decisions (a family such as <c>toxic.*</c> reports each member's own id).</summary>
    string Id { get; }

    void Evaluate(PolicyEvaluation evaluation);
}
