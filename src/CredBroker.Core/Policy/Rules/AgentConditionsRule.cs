namespace CredBroker.Core.Policy.Rules;

/// <summary>
/// <c>agent.context</c>: the request carries every context label the agent requires, with an
/// allowed value; <c>agent.time_window</c>: it arrives inside one of the agent's time windows (UTC).
/// </summary>
public sealed class AgentConditionsRule : IPolicyRule
{
    public const string TimeWindowId = "agent.time_window";

    private static readonly Dictionary<string, IReadOnlySet<string>> NoConditions = [];

    public string Id => "agent.context";

    public void Evaluate(PolicyEvaluation e)
    {
        foreach (var (key, values) in e.Agent.RequiredContext.Count == 0 ? NoConditions : e.Agent.RequiredContext)
        {
            if (!e.Request.Context.TryGetValue(key, out var value))
            {
                e.Deny(Id, $"Agent '{e.Agent.Id}' requires context label '{key}' (one of: {string.Join(", ", values.Order(StringComparer.Ordinal))}); add it to the request's context.");
                return;
            }

            if (!values.Contains(value))
            {
                e.Deny(Id, $"Agent '{e.Agent.Id}' may not run with {key}='{value}' (allowed: {string.Join(", ", values.Order(StringComparer.Ordinal))}).");
                return;
            }
        }

        e.Pass(Id);
        if (e.Agent.TimeWindows.Count > 0 && !e.Agent.TimeWindows.Any(w => w.Contains(e.Now)))
        {
            e.Deny(TimeWindowId, $"Agent '{e.Agent.Id}' may only begin tasks during {string.Join("; ", e.Agent.TimeWindows)}; it is {e.Now.UtcDateTime:ddd HH:mm} UTC.");
            return;
        }

        e.Pass(TimeWindowId);
    }
}
