using System.Globalization;

namespace CredBroker.Testing;

/// <summary>
/// Many agents for tests of a broker on a real Redis Cluster (spread by their ids over the 16 lease shards): their
/// policy entries, their workload identities for <see cref="ProductionBroker"/>, and the key tag of a shard.
/// </summary>
public static class ClusterAgents
{
    /// <summary>The workload subject that authenticates as <paramref name="agent"/>.</summary>
    public static string Subject(string agent) => $"system:serviceaccount:cluster:{agent}";

    /// <summary>
    /// A policy's <c>agents:</c> list: each may ask for <c>tickets:read</c> at <c>tickets-api</c>; <paramref name="extra"/>
    /// lines (e.g. <c>approval_scopes: [tickets:export]</c>) are added to every entry.
    /// </summary>
    public static string Yaml(IEnumerable<string> agents, string purpose, params string[] extra) =>
        "agents:\n" + string.Concat(agents.Select(agent =>
            $"  - id: {agent}\n    owner: {agent}@example.com\n    purpose: {purpose}\n    audiences: [tickets-api]\n    allowed_scopes: [tickets:read]\n"
            + "    max_token_ttl: 5m\n    max_lease_lifetime: 30m\n" + string.Concat(extra.Select(line => $"    {line}\n")) + "\n"));

    /// <summary>Broker arguments mapping each agent's <see cref="Subject"/> to it (workloads 3 on: ProductionBroker has 0–2).</summary>
    public static string[] WorkloadArguments(IEnumerable<string> agents) => agents.SelectMany((agent, i) => new[]
    {
        $"--CredBroker:Identity:Issuers:0:Workloads:{3 + i}:Subject={Subject(agent)}",
        $"--CredBroker:Identity:Issuers:0:Workloads:{3 + i}:Agent={agent}",
    }).ToArray();

    /// <summary>The hash tag every key of lease shard <paramref name="shard"/> starts with (it picks the cluster slot).</summary>
    public static string ShardTag(int shard) => "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";
}
