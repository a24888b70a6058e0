namespace CredBroker.Core.Policy.Rules;

/// <summary><c>agent.approval</c>: the agent's intervention point; scopes matching its approval patterns need a human.</summary>
public sealed class ApprovalScopesRule : IPolicyRule
{
    public string Id => "agent.approval";

    public void Evaluate(PolicyEvaluation e)
    {
        foreach (var scope in e.Scopes)
        {
            if (e.Agent.Approval.Matches(scope))
            {
                e.NeedApproval(Id, scope, $"Scope '{scope}' requires human approval for agent '{e.Agent.Id}'.");
            }
        }

        e.Pass(Id);
    }
}
