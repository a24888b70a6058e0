using CredBroker.Core.Agents;

namespace CredBroker.Core.Policy;

/// <summary>
/// The agent definition as policy: audience must be the agent's, disallowed scopes always deny,
/// approval scopes need a human, every other scope must be allowed, and the lease ttl is capped.
/// Rules run in order and the first refusal decides.
/// </summary>
public sealed class AgentScopePolicy : IIssuancePolicy
{
    public Decision Decide(AgentDefinition agent, TaskRequest request)
    {
        var fired = new List<string>();
        var audience = string.IsNullOrEmpty(request.Audience) ? agent.Audiences[0] : request.Audience;
        if (!agent.Audiences.Contains(audience, StringComparer.Ordinal))
        {
            return Deny(fired, "agent.audience",
                $"Audience '{audience}' is not one of agent '{agent.Id}''s audiences ({string.Join(", ", agent.Audiences)}).");
        }

        fired.Add("agent.audience");
        foreach (var scope in request.Scopes)
        {
            if (agent.DisallowedScopes.Contains(scope))
            {
                return Deny(fired, "agent.disallowed_scope", $"Scope '{scope}' is disallowed for agent '{agent.Id}'.");
            }
        }

        foreach (var scope in request.Scopes)
        {
            if (agent.ApprovalScopes.Contains(scope))
            {
                // Approvals arrive with the policy engine; until then an approval scope is refused (fail closed).
                return Deny(fired, "agent.approval_required",
                    $"Scope '{scope}' requires human approval for agent '{agent.Id}', and this broker has no approval workflow enabled; request it without '{scope}'.");
            }

            if (!agent.AllowedScopes.Contains(scope))
            {
                return Deny(fired, "agent.allowed_scopes",
                    $"Scope '{scope}' is not in agent '{agent.Id}''s allowed scopes ({string.Join(", ", agent.AllowedScopes.Order(StringComparer.Ordinal))}).");
            }
        }

        fired.Add("agent.allowed_scopes");
        var ttl = request.LeaseTtl ?? agent.DefaultLeaseTtl;
        if (ttl > agent.MaxLeaseLifetime)
        {
            ttl = agent.MaxLeaseLifetime;
            fired.Add("agent.lease_ttl_cap");
        }

        var granted = request.Scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return new Decision(DecisionOutcome.Allow, granted, audience, ttl, fired, "allowed by the agent definition");
    }

    private static Decision Deny(List<string> fired, string rule, string reason)
    {
        fired.Add(rule);
        return new Decision(DecisionOutcome.Deny, [], string.Empty, TimeSpan.Zero, fired, reason);
    }
}
