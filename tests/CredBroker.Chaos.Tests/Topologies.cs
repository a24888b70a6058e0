using CredBroker.Testing;

namespace CredBroker.Chaos.Tests;

/// <summary>A Redis deployment the brokers run on, and the Redis fault the nemesis injects into it.</summary>
public abstract class Topology : IDisposable
{
    /// <summary>Short name for the report, e.g. "standalone".</summary>
    public abstract string Name { get; }

    /// <summary>The durability setting under test, e.g. "AOF appendfsync always".</summary>
    public abstract string Setting { get; }

    /// <summary>The brokers' CredBroker:Redis:Configuration.</summary>
    public abstract string Configuration { get; }

    /// <summary>More broker arguments (e.g. WaitReplicas).</summary>
    public virtual string[] BrokerArguments => [];

    /// <summary>The fault kind name of <see cref="InjectRedisFaultAsync"/> in the report.</summary>
    public abstract string RedisFaultKind { get; }

    /// <summary>Injects the Redis fault, holds it for <paramref name="hold"/>, heals it; returns once healed.</summary>
    public abstract Task InjectRedisFaultAsync(Random random, TimeSpan hold, CancellationToken cancellationToken);

    /// <summary>
    /// A setting that loses acknowledged writes by design (asynchronous replication with failover): run to measure
    /// what it loses; its violations are reported but do not fail the run.
    /// </summary>
    public virtual bool LossByDesign => false;

    /// <summary>Every Redis fault kind the nemesis takes in turn (by default the one <see cref="RedisFaultKind"/>).</summary>
    public virtual IReadOnlyList<string> RedisFaultKinds => [RedisFaultKind];

    /// <summary>Injects the Redis fault <paramref name="kind"/> (one of <see cref="RedisFaultKinds"/>) and heals it.</summary>
    public virtual Task InjectRedisFaultAsync(string kind, Random random, TimeSpan hold, CancellationToken cancellationToken) =>
        InjectRedisFaultAsync(random, hold, cancellationToken);

    public abstract void Dispose();

    protected static async Task UntilAsync(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }
}

/// <summary>One redis-server with AOF and appendfsync always; the fault is kill -9 and a restart from the AOF.</summary>
public sealed class StandaloneTopology : Topology
{
    private readonly RedisServer _redis = RedisServer.Start(appendOnly: true);

    public override string Name => "standalone";

    public override string Setting => "AOF, appendfsync always";

    public override string Configuration => _redis.ConnectionString;

    public override string RedisFaultKind => "redis kill -9 + restart from AOF";

    public override async Task InjectRedisFaultAsync(Random random, TimeSpan hold, CancellationToken cancellationToken)
    {
        _redis.Kill();
        await Task.Delay(hold, CancellationToken.None);
        _redis.Restart();
    }

    public override void Dispose() => _redis.Dispose();
}

/// <summary>A 3-master Redis Cluster (AOF always, full coverage off); the fault is kill -9 of one master and a restart from its AOF.</summary>
public sealed class ClusterTopology : Topology
{
    private readonly RedisCluster _cluster = RedisCluster.Start(appendOnly: true, fullCoverage: false);

    public override string Name => "cluster (3 masters)";

    public override string Setting => "AOF, appendfsync always, cluster-require-full-coverage no";

    public override string Configuration => _cluster.ConnectionString;

    public override string RedisFaultKind => "cluster master kill -9 + restart from AOF";

    public override async Task InjectRedisFaultAsync(Random random, TimeSpan hold, CancellationToken cancellationToken)
    {
        var victim = _cluster.Nodes[random.Next(_cluster.Nodes.Count)];
        victim.Kill();
        await Task.Delay(hold, CancellationToken.None);
        victim.Restart();
        await UntilAsync(() => _cluster.Nodes.All(n => RedisCluster.Info(n).Contains("cluster_state:ok", StringComparison.Ordinal)), TimeSpan.FromSeconds(20));
    }

    public override void Dispose() => _cluster.Dispose();
}

/// <summary>
/// A primary and a replica (AOF always) behind one Sentinel; brokers connect through Sentinel and wait
/// for one replica's acknowledgement (WAIT 1) on every write that ends access. The fault is kill -9 of
/// the current primary: Sentinel promotes the replica, the old primary restarts from its AOF and
/// rejoins as a replica.
/// </summary>
public sealed class SentinelTopology : Topology
{
    private readonly RedisReplicaSet _set;

    public SentinelTopology()
    {
        _set = RedisReplicaSet.Start(replicas: 1);
        try
        {
            _set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 1000);
        }
        catch
        {
            _set.Dispose();
            throw;
        }
    }

    public override string Name => "primary + replica + Sentinel";

    public override string Setting => "AOF always, WaitReplicas=1 (WAIT 1), WaitForLeaseWrites";

    public override string Configuration => _set.SentinelConfiguration;

    public override string[] BrokerArguments => ["--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitForLeaseWrites=true"];

    public override string RedisFaultKind => "Sentinel failover (primary kill -9)";

    public override async Task InjectRedisFaultAsync(Random random, TimeSpan hold, CancellationToken cancellationToken)
    {
        var sentinel = _set.Sentinels[0];
        var servers = new[] { _set.Primary }.Concat(_set.Replicas).ToList();
        var primaryPort = _set.SentinelPrimaryPort(sentinel);
        var primary = servers.FirstOrDefault(s => s.Port == primaryPort);
        if (primary is null)
        {
            return;
        }

        primary.Kill();
        // Sentinel notices (down-after 1 s) and promotes the replica.
        await UntilAsync(() => _set.SentinelPrimaryPort(sentinel) is var p && p > 0 && p != primaryPort, TimeSpan.FromSeconds(20));
        var promoted = _set.SentinelPrimaryPort(sentinel) is var now && now > 0 && now != primaryPort;
        await Task.Delay(hold, CancellationToken.None);
        primary.Restart();
        // The old primary comes back from its AOF as a primary (its arguments name none); Sentinel turns it into a replica of
        // the new one (about 10 s later). Until then there are two primaries: the run reports a fault that never got that far
        // (the next failover could then promote the stale one), so a finding after it can be judged by it.
        await UntilAsync(() => _set.Cli(primary.Port, "INFO replication").Contains("master_link_status:up", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        if (!promoted || !_set.Cli(primary.Port, "INFO replication").Contains("master_link_status:up", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(promoted
                ? $"the old primary (port {primaryPort}) did not become a replica of the new one within 30 s of its restart (two primaries meanwhile)"
                : $"Sentinel did not promote the replica within 20 s of the primary's kill (port {primaryPort}); it was restarted as the primary");
        }
    }

    public override void Dispose() => _set.Dispose();
}
