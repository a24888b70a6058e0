namespace CredBroker.Core.Policy;

/// <summary>An agent that was denied <see cref="Denials"/> times within <see cref="Window"/>: it may be routing around a block.</summary>
public sealed record DenialBurst(string AgentId, int Denials, TimeSpan Window, DenialBurstAction Action, DateTimeOffset At, IReadOnlyList<string> RuleIds);

/// <summary>
/// Counts policy denials per agent in a sliding window and reports a burst once per window when
/// the threshold is reached. Per broker replica (in memory): with N replicas an agent spreading
/// its calls needs up to N × threshold denials before one replica trips.
/// </summary>
public sealed class DenialBurstDetector(TimeProvider time)
{
    private const int MaxTrackedAgents = 100_000;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (Queue<DateTimeOffset> Times, DateTimeOffset LastTrip)> _agents = new(StringComparer.Ordinal);

    /// <summary>Records one denial; returns the burst when this denial reaches the threshold (null otherwise or when detection is off).</summary>
    public DenialBurst? Record(string agentId, Decision decision, DenialBurstSettings? settings)
    {
        if (settings is null)
        {
            return null;
        }

        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (!_agents.TryGetValue(agentId, out var entry))
            {
                if (_agents.Count >= MaxTrackedAgents)
                {
                    Prune(now, settings.Window);
                }

                entry = (new Queue<DateTimeOffset>(), DateTimeOffset.MinValue);
            }

            entry.Times.Enqueue(now);
            while (entry.Times.TryPeek(out var oldest) && oldest <= now - settings.Window)
            {
                entry.Times.Dequeue();
            }

            DenialBurst? burst = null;
            if (entry.Times.Count >= settings.Threshold && now - entry.LastTrip >= settings.Window)
            {
                burst = new DenialBurst(agentId, entry.Times.Count, settings.Window, settings.Action, now, decision.RuleIds);
                entry.LastTrip = now;
            }

            _agents[agentId] = entry;
            return burst;
        }
    }

    private void Prune(DateTimeOffset now, TimeSpan window)
    {
        foreach (var agent in _agents.Where(a => a.Value.Times.All(t => t <= now - window)).Select(a => a.Key).ToList())
        {
            _agents.Remove(agent);
        }
    }
}
