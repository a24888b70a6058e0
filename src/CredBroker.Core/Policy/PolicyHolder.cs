using CredBroker.Core.Agents;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Policy;

/// <summary>The outcome of a reload: applied, or refused with the errors while the last good policy stays in force.</summary>
public sealed record PolicyReloadResult(bool Applied, string Version, IReadOnlyList<PolicyError> Errors, DateTimeOffset LoadedAt);

/// <summary>
/// The policy in force, swapped atomically on reload. A reload that fails validation changes
/// nothing: the last good policy keeps deciding, and the errors are returned (and kept in
/// <see cref="LastError"/>) so operators see why.
/// </summary>
public sealed class PolicyHolder : IAgentCatalog, IIssuancePolicy
{
    private readonly Func<PolicyDocument> _load;
    private readonly PolicyEngine _engine;
    private readonly TimeProvider _time;
    private readonly Lock _reloadGate = new();
    private volatile State _state;

    /// <param name="load">Reads and validates the policy (throws <see cref="PolicyFileException"/> when invalid).</param>
    public PolicyHolder(Func<PolicyDocument> load, TimeProvider time, PolicyEngine? engine = null)
    {
        _load = load;
        _time = time;
        _engine = engine ?? new PolicyEngine();
        _state = new State(load(), time.GetUtcNow(), null);
    }

    public static PolicyHolder FromFile(string path, TimeProvider time) => new(() => PolicyFile.Load(path), time);

    public PolicyDocument Current => _state.Policy;

    public DateTimeOffset LoadedAt => _state.LoadedAt;

    /// <summary>Why the most recent reload was refused, or null when it succeeded.</summary>
    public PolicyReloadResult? LastError => _state.LastError;

    public PolicyEngine Engine => _engine;

    public PolicyReloadResult Reload()
    {
        lock (_reloadGate)
        {
            var now = _time.GetUtcNow();
            try
            {
                var policy = _load();
                _state = new State(policy, now, null);
                return new PolicyReloadResult(true, policy.Version, [], now);
            }
            catch (PolicyFileException e)
            {
                var refused = new PolicyReloadResult(false, _state.Policy.Version, e.Errors, now);
                _state = _state with { LastError = refused };
                return refused;
            }
        }
    }

    public AgentDefinition? Find(string agentId) => _state.Policy.Agents.Find(agentId);

    public Decision Decide(AgentDefinition agent, TaskRequest request) =>
        _engine.Evaluate(_state.Policy, agent, request, _time.GetUtcNow());

    /// <summary>A dry run with the full rule trace, for any agent id (an unknown one is denied with <c>agent.defined</c>).</summary>
    public Decision Explain(TaskRequest request)
    {
        var policy = _state.Policy;
        return _engine.Evaluate(policy, policy.Agents.Find(request.AgentId), request, _time.GetUtcNow(), explain: true);
    }

    private sealed record State(PolicyDocument Policy, DateTimeOffset LoadedAt, PolicyReloadResult? LastError);
}
