using BenchmarkDotNet.Attributes;
using CredBroker.Core.Policy;

namespace CredBroker.MicroBench;

/// <summary>
/// The request-time decision through <see cref="IIssuancePolicy"/>, whatever implements it. Today
/// that is the broker's <see cref="AgentScopePolicy"/> (as composed in BrokerApp); when the rule
/// pipeline replaces it, change <see cref="Create"/> and nothing else.
/// </summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private readonly IIssuancePolicy _policy = Create();
    private readonly TaskRequest _request = new(
        MintFixture.Agent.Id, "task-0001", string.Empty, ["tickets:read"], "tickets-api", null, new Dictionary<string, string>());

    /// <summary>The broker's policy (the rule pipeline) over a one-agent policy document.</summary>
    public static IIssuancePolicy Create() =>
        new PolicyHolder(() => new PolicyDocument { Agents = new CredBroker.Core.Agents.AgentCatalog([MintFixture.Agent]) }, TimeProvider.System);

    [Benchmark(Description = "IIssuancePolicy.Decide (allow, one scope)")]
    public Decision Decide() => _policy.Decide(MintFixture.Agent, _request);
}
