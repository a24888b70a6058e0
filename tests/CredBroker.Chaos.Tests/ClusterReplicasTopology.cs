using CredBroker.Testing;

namespace CredBroker.Chaos.Tests;

/// <summary>
/// A Redis Cluster of 3 masters with one replica each (AOF always, cluster-node-timeout 1500 ms, full coverage
/// off); brokers wait for one replica's acknowledgement on every lease write and audit batch (WAIT 1 sent to the
/// master that owns the slot). The nemesis takes three Redis faults in turn: kill -9 of one master (its replica is
/// promoted; the old master restarts from its AOF and rejoins as a replica), a graceful CLUSTER FAILOVER, and a
/// MOVED/ASK storm (slots of the broker's shards migrated to another master and back while the clients run).
/// </summary>
public sealed class ClusterReplicasTopology : Topology
{
    public const string KillFailover = "cluster master kill -9 → replica promoted → rejoins from AOF";
    public const string GracefulFailover = "CLUSTER FAILOVER (graceful)";
    public const string SlotStorm = "slot migration storm (MOVED/ASK)";

    private readonly RedisCluster _cluster = RedisCluster.Start(replicasPerMaster: 1, appendOnly: true, fullCoverage: false, nodeTimeoutMs: 1500);
    private readonly bool _wait;

    /// <param name="waitForReplicas">
    /// WaitReplicas=1 with WaitForLeaseWrites (the setting that must lose nothing); false runs the same faults on
    /// asynchronous replication, to measure what a failover loses without WAIT (<see cref="Topology.LossByDesign"/>).
    /// </param>
    public ClusterReplicasTopology(bool waitForReplicas = true) => _wait = waitForReplicas;

    public override string Name => _wait ? "cluster (3 masters + 3 replicas)" : "cluster (3 masters + 3 asynchronous replicas)";

    public override string Setting => "AOF always, cluster-require-full-coverage no, " + (_wait ? "WaitReplicas=1 (WAIT 1), WaitForLeaseWrites" : "no WAIT");

    public override string Configuration => _cluster.ConnectionString;

    public override string[] BrokerArguments => _wait ? ["--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitForLeaseWrites=true"] : [];

    public override bool LossByDesign => !_wait;

    public override string RedisFaultKind => KillFailover;

    public override IReadOnlyList<string> RedisFaultKinds => [KillFailover, SlotStorm, GracefulFailover];

    public override Task InjectRedisFaultAsync(Random random, TimeSpan hold, CancellationToken cancellationToken) =>
        InjectRedisFaultAsync(KillFailover, random, hold, cancellationToken);

    public override async Task InjectRedisFaultAsync(string kind, Random random, TimeSpan hold, CancellationToken cancellationToken)
    {
        switch (kind)
        {
            case GracefulFailover:
                await GracefulFailoverAsync(random, hold);
                break;
            case SlotStorm:
                await SlotStormAsync(random, hold);
                break;
            default:
                await KillFailoverAsync(random, hold);
                break;
        }
    }

    private async Task KillFailoverAsync(Random random, TimeSpan hold)
    {
        var (master, replica) = PickMasterWithReplica(random);
        master.Kill();
        // The replica notices (cluster-node-timeout 1.5 s), wins the election and takes the slots.
        await ExpectAsync(() => RedisCluster.Role(replica) == "master", TimeSpan.FromSeconds(30), $"replica {replica.Port} was not promoted after its master {master.Port} was killed");
        await Task.Delay(hold, CancellationToken.None);
        master.Restart();
        // The old master comes back from its AOF, learns it lost its slots and becomes a replica of the promoted one.
        await ExpectAsync(() => RedisCluster.IsLinkedReplica(master), TimeSpan.FromSeconds(30), $"old master {master.Port} did not rejoin as a linked replica");
        await ExpectAsync(AllOk, TimeSpan.FromSeconds(30), "the cluster did not return to cluster_state:ok");
    }

    private async Task GracefulFailoverAsync(Random random, TimeSpan hold)
    {
        var (master, replica) = PickMasterWithReplica(random);
        var answer = RedisCluster.Command(replica, "cluster", "failover");
        if (!answer.Contains("OK", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"CLUSTER FAILOVER on {replica.Port} refused: {answer.Trim()}");
        }

        await ExpectAsync(() => RedisCluster.Role(replica) == "master" && RedisCluster.IsLinkedReplica(master), TimeSpan.FromSeconds(30),
            $"CLUSTER FAILOVER: {replica.Port} did not take over from {master.Port}");
        await Task.Delay(hold, CancellationToken.None);
        await ExpectAsync(AllOk, TimeSpan.FromSeconds(30), "the cluster did not return to cluster_state:ok");
    }

    /// <summary>Two or three of the 16 shards' slots, each moved to another master and back (batches of keys, pauses between: ASK/TRYAGAIN, then MOVED).</summary>
    private Task SlotStormAsync(Random random, TimeSpan hold) => Task.Run(() =>
    {
        var shards = Enumerable.Range(0, 16).OrderBy(_ => random.Next()).Take(random.Next(2, 4)).ToList();
        var pause = TimeSpan.FromMilliseconds(Math.Max(50, hold.TotalMilliseconds / 10));
        foreach (var shard in shards)
        {
            var tag = $"cb:{{s{shard:x2}}}:";
            var slot = RedisCluster.SlotOf(tag);
            var home = _cluster.MasterOf(tag);
            var away = _cluster.Masters().Where(m => m != home).OrderBy(_ => random.Next()).First();
            _cluster.MigrateSlot(slot, home, away, pause);
            _cluster.MigrateSlot(slot, away, home, pause);
        }
    });

    private (RedisServer Master, RedisServer Replica) PickMasterWithReplica(Random random)
    {
        var candidates = _cluster.Masters().Select(m => (Master: m, Replica: _cluster.ReplicasOf(m).FirstOrDefault(RedisCluster.IsLinkedReplica))).Where(p => p.Replica is not null).ToList();
        if (candidates.Count == 0)
        {
            throw new InvalidOperationException("no master has a linked replica");
        }

        var pick = candidates[random.Next(candidates.Count)];
        return (pick.Master, pick.Replica!);
    }

    private bool AllOk() => _cluster.Nodes.All(n => RedisCluster.Info(n).Contains("cluster_state:ok", StringComparison.Ordinal));

    private static async Task ExpectAsync(Func<bool> condition, TimeSpan within, string failure)
    {
        await UntilAsync(condition, within);
        if (!condition())
        {
            throw new InvalidOperationException(failure);
        }
    }

    public override void Dispose() => _cluster.Dispose();
}
