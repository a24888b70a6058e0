namespace CredBroker.Core.Policy.Rules;

/// <summary><c>agent.allowed_scopes</c>: every scope matches an allowed pattern (or an approval pattern, decided later); otherwise deny.</summary>
public sealed class AllowedScopesRule : IPolicyRule
{
    public string Id => "agent.allowed_scopes";

    public void Evaluate(PolicyEvaluation e)
    {
        foreach (var scope in e.Scopes)
        {
            if (!e.Agent.Allowed.Matches(scope) && !e.Agent.Approval.Matches(scope))
            {
                e.Deny(Id, $"Scope '{scope}' is not in agent '{e.Agent.Id}''s allowed scopes ({e.Agent.Allowed}).");
                return;
            }
        }

        e.Allow(Id, e.Explaining ? string.Join(" ", e.Scopes) : string.Empty);
    }
}
