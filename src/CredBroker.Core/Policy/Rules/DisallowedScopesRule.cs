namespace CredBroker.Core.Policy.Rules;

/// <summary><c>agent.disallowed_scope</c>: a scope matching a disallowed pattern denies the request; it wins over every allow.</summary>
public sealed class DisallowedScopesRule : IPolicyRule
{
    public string Id => "agent.disallowed_scope";

    public void Evaluate(PolicyEvaluation e)
    {
        foreach (var scope in e.Scopes)
        {
            if (e.Agent.Disallowed.Matches(scope))
            {
                e.Deny(Id, $"Scope '{scope}' is disallowed for agent '{e.Agent.Id}'.");
                return;
            }
        }

        e.Pass(Id);
    }
}
