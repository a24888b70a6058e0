namespace CredBroker.Core.Policy.Rules;

/// <summary><c>agent.audience</c>: the token is for one of the agent's audiences.</summary>
public sealed class AudienceRule : IPolicyRule
{
    public string Id => "agent.audience";

    public void Evaluate(PolicyEvaluation e)
    {
        if (!e.Agent.Audiences.Contains(e.Audience, StringComparer.Ordinal))
        {
            e.Deny(Id, $"Audience '{e.Audience}' is not one of agent '{e.Agent.Id}''s audiences ({string.Join(", ", e.Agent.Audiences)}).");
            return;
        }

        e.Pass(Id, e.Audience);
    }
}
