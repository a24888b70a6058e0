namespace CredBroker.Core.Policy.Rules;

/// <summary>
/// <c>agent.lease_ttl_cap</c>: the requested lease ttl is capped at the agent's max lease lifetime;
/// <c>agent.token_ttl_cap</c>: a per-scope cap lowers the token lifetime below the agent's max.
/// </summary>
public sealed class LeaseTtlRule : IPolicyRule
{
    public const string TokenTtlId = "agent.token_ttl_cap";

    public string Id => "agent.lease_ttl_cap";

    public void Evaluate(PolicyEvaluation e)
    {
        if (e.LeaseTtl > e.Agent.MaxLeaseLifetime)
        {
            e.CapLease(Id, e.Agent.MaxLeaseLifetime, $"lease ttl capped at agent '{e.Agent.Id}''s max_lease_lifetime {e.Agent.MaxLeaseLifetime}");
        }
        else
        {
            e.Pass(Id);
        }

        if (e.Agent.ScopeTtlCaps.Count > 0 && e.Agent.TokenTtlFor(e.Scopes) is var tokenTtl && tokenTtl < e.Agent.MaxTokenTtl)
        {
            e.Narrow(TokenTtlId, $"tokens live at most {tokenTtl} (a per-scope cap)");
        }
    }
}
