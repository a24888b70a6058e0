namespace CredBroker.Core.Agents;

/// <summary>The agent definitions in force (the policy's registry; it may be reloaded between calls).</summary>
public interface IAgentCatalog
{
    AgentDefinition? Find(string agentId);
}

public sealed class AgentCatalog : IAgentCatalog
{
    private readonly Dictionary<string, AgentDefinition> _agents;
    private readonly Dictionary<string, AgentDefinition> _byIdentity = new(StringComparer.Ordinal);

    public AgentCatalog(IEnumerable<AgentDefinition> agents)
    {
        _agents = new Dictionary<string, AgentDefinition>(StringComparer.Ordinal);
        foreach (var agent in agents)
        {
            if (!_agents.TryAdd(agent.Id, agent))
            {
                throw new ArgumentException($"Agent '{agent.Id}' is defined twice.", nameof(agents));
            }

            foreach (var identity in agent.Identities)
            {
                // One identity, one agent: the policy file reports a second claim on it as an error (file:line).
                _byIdentity.TryAdd(identity, agent);
            }
        }
    }

    /// <summary>The agent whose <c>identities</c> list exactly this entry (<c>issuer|subject</c> or a bare subject), if any.</summary>
    public AgentDefinition? FindByIdentity(string identity) => _byIdentity.GetValueOrDefault(identity);

    /// <summary>
    /// The agent for <paramref name="subject"/> vouched for by <paramref name="source"/> (an issuer, or
    /// <see cref="IdentityEntry.ClientCertificateSource"/>): the entry <c>source|subject</c>, else — only when
    /// <paramref name="allowUnqualified"/> (the host trusts one source) — a bare <c>subject</c> entry.
    /// </summary>
    public AgentDefinition? FindByIdentity(string source, string subject, bool allowUnqualified) =>
        _byIdentity.GetValueOrDefault(IdentityEntry.Qualified(source, subject))
        ?? (allowUnqualified && !subject.Contains(IdentityEntry.Separator, StringComparison.Ordinal) ? _byIdentity.GetValueOrDefault(subject) : null);

    /// <summary>Every <c>identities</c> entry with the agent that lists it.</summary>
    public IEnumerable<(string Identity, AgentDefinition Agent)> Identities => _byIdentity.Select(p => (p.Key, p.Value));

    public IReadOnlyCollection<AgentDefinition> All => _agents.Values;

    public AgentDefinition? Find(string agentId) => _agents.GetValueOrDefault(agentId);
}
