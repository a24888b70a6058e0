using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CredBroker.Testing;

/// <summary>
/// A local Redis Cluster of three masters (Debian's redis-server processes on loopback ports,
/// slots split by <c>redis-cli --cluster create</c>), so the store suite proves every script
/// stays in one hash slot.
/// </summary>
public sealed class RedisCluster : IDisposable
{
    private readonly List<RedisServer> _nodes = [];

    private RedisCluster()
    {
    }

    public IReadOnlyList<RedisServer> Nodes => _nodes;

    /// <summary>A StackExchange.Redis configuration naming every node.</summary>
    public string ConnectionString => string.Join(",", _nodes.Select(n => n.ConnectionString));

    /// <param name="replicasPerMaster">Replicas of each of the three masters (0 or 1).</param>
    /// <param name="appendOnly">AOF with fsync always on every node (a killed node restarts with its data).</param>
    /// <param name="fullCoverage">
    /// cluster-require-full-coverage: yes (Redis's default) refuses every command with CLUSTERDOWN once a
    /// slot has no master; no keeps the other masters' slots answering.
    /// </param>
    /// <param name="nodeTimeoutMs">cluster-node-timeout: how long before a silent master counts as failed.</param>
    public static RedisCluster Start(int replicasPerMaster = 0, bool appendOnly = false, bool fullCoverage = true, int nodeTimeoutMs = 3000)
    {
        var cluster = new RedisCluster();
        try
        {
            foreach (var port in ClusterPorts(3 * (1 + replicasPerMaster)))
            {
                cluster._nodes.Add(RedisServer.Start(appendOnly, port,
                    $"--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout {nodeTimeoutMs} --cluster-require-full-coverage {(fullCoverage ? "yes" : "no")}"));
            }

            var create = Cli("--cluster create " + string.Join(" ", cluster._nodes.Select(n => n.ConnectionString)) + $" --cluster-replicas {replicasPerMaster} --cluster-yes");
            if (create.ExitCode != 0)
            {
                throw new InvalidOperationException("redis-cli --cluster create failed: " + create.Output);
            }

            cluster.WaitUntil(() => cluster._nodes.All(n => Cli($"-p {n.Port} cluster info").Output.Contains("cluster_state:ok", StringComparison.Ordinal)),
                "The test cluster did not reach cluster_state:ok.");
            if (replicasPerMaster > 0)
            {
                cluster.WaitUntil(() => cluster._nodes.All(n => !Cli($"-p {n.Port} info replication").Output.Contains("role:slave", StringComparison.Ordinal)
                    || Cli($"-p {n.Port} info replication").Output.Contains("master_link_status:up", StringComparison.Ordinal)), "A cluster replica never linked to its master.");
            }

            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary>The node that currently serves <paramref name="key"/>'s slot as master (asked of a live node).</summary>
    public RedisServer MasterOf(string key)
    {
        var slot = SlotOf(key);
        foreach (var asked in _nodes)
        {
            var nodes = Cli($"-p {asked.Port} cluster nodes");
            if (nodes.ExitCode != 0 || nodes.Output.Length == 0 || nodes.Output.StartsWith("Could not connect", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var line in nodes.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 9 || !fields[2].Contains("master", StringComparison.Ordinal) || fields[2].Contains("fail", StringComparison.Ordinal))
                {
                    continue;
                }

                foreach (var range in fields[8..].Where(r => !r.StartsWith('[')))
                {
                    var bounds = range.Split('-');
                    var (low, high) = (int.Parse(bounds[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(bounds[^1], System.Globalization.CultureInfo.InvariantCulture));
                    if (slot >= low && slot <= high)
                    {
                        var port = int.Parse(fields[1].Split('@')[0].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
                        return _nodes.Single(n => n.Port == port);
                    }
                }
            }
        }

        throw new InvalidOperationException($"No live master serves slot {slot} of key {key}.");
    }

    /// <summary>One line of CLUSTER NODES: the node, its id, whether it is a (live) master, its master's id, its slots.</summary>
    public sealed record NodeView(RedisServer Node, string Id, bool IsMaster, bool Failed, string? MasterId, IReadOnlyList<(int Low, int High)> Slots);

    /// <summary>The cluster as a live node sees it (empty when no node answers).</summary>
    public IReadOnlyList<NodeView> View()
    {
        foreach (var asked in _nodes)
        {
            var nodes = Cli($"-p {asked.Port} cluster nodes");
            if (nodes.ExitCode != 0 || nodes.Output.Length == 0 || nodes.Output.StartsWith("Could not connect", StringComparison.Ordinal))
            {
                continue;
            }

            var view = new List<NodeView>();
            foreach (var line in nodes.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 8)
                {
                    continue;
                }

                var port = int.Parse(fields[1].Split('@')[0].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
                var node = _nodes.SingleOrDefault(n => n.Port == port);
                if (node is null)
                {
                    continue;
                }

                var slots = fields[8..].Where(r => !r.StartsWith('[')).Select(r => r.Split('-')).Select(b =>
                    (int.Parse(b[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(b[^1], System.Globalization.CultureInfo.InvariantCulture))).ToList();
                view.Add(new NodeView(node, fields[0], fields[2].Contains("master", StringComparison.Ordinal), fields[2].Contains("fail", StringComparison.Ordinal),
                    fields[3] == "-" ? null : fields[3], slots));
            }

            return view;
        }

        return [];
    }

    /// <summary>The live masters that serve slots now.</summary>
    public IReadOnlyList<RedisServer> Masters() => View().Where(v => v.IsMaster && !v.Failed && v.Slots.Count > 0).Select(v => v.Node).ToList();

    /// <summary>The replicas of <paramref name="master"/> (as the cluster sees them now).</summary>
    public IReadOnlyList<RedisServer> ReplicasOf(RedisServer master)
    {
        var view = View();
        var id = view.FirstOrDefault(v => v.Node == master)?.Id;
        return id is null ? [] : view.Where(v => v.MasterId == id).Select(v => v.Node).ToList();
    }

    /// <summary>The node's own id (CLUSTER MYID).</summary>
    public static string NodeId(RedisServer node) => Cli($"-p {node.Port} cluster myid").Output.Trim();

    /// <summary>The role line of INFO replication: "master" or "slave" (empty when the node does not answer).</summary>
    public static string Role(RedisServer node)
    {
        var info = Cli($"-p {node.Port} info replication").Output;
        var line = info.Split('\n').FirstOrDefault(l => l.StartsWith("role:", StringComparison.Ordinal));
        return line is null ? string.Empty : line["role:".Length..].Trim();
    }

    /// <summary>True when <paramref name="node"/> is a replica whose link to its master is up.</summary>
    public static bool IsLinkedReplica(RedisServer node)
    {
        var info = Cli($"-p {node.Port} info replication").Output;
        return info.Contains("role:slave", StringComparison.Ordinal) && info.Contains("master_link_status:up", StringComparison.Ordinal);
    }

    /// <summary>Runs one command on <paramref name="node"/> (each argument passed as is); returns redis-cli's output.</summary>
    public static string Command(RedisServer node, params string[] arguments) => Cli(["-p", node.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. arguments]).Output;

    /// <summary>
    /// Moves <paramref name="slot"/> from its master <paramref name="from"/> to the master <paramref name="to"/> the way
    /// redis-cli --cluster reshard does, while clients run: IMPORTING on the target, MIGRATING on the source, MIGRATE of
    /// the slot's keys a few at a time (<paramref name="pause"/> between batches: the window in which clients get ASK and
    /// TRYAGAIN), then SETSLOT NODE on the target, the source and every other master (clients get MOVED).
    /// </summary>
    public void MigrateSlot(int slot, RedisServer from, RedisServer to, TimeSpan pause, int batch = 3)
    {
        var s = slot.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (fromId, toId) = (NodeId(from), NodeId(to));
        Expect(Command(to, "cluster", "setslot", s, "importing", fromId), "OK", "SETSLOT IMPORTING");
        Expect(Command(from, "cluster", "setslot", s, "migrating", toId), "OK", "SETSLOT MIGRATING");
        Thread.Sleep(pause);
        while (true)
        {
            var keys = Command(from, "cluster", "getkeysinslot", s, batch.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (keys.Length == 0)
            {
                break;
            }

            var migrate = Command(from, ["migrate", "127.0.0.1", to.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "", "0", "5000", "keys", .. keys]);
            if (!migrate.Contains("OK", StringComparison.Ordinal) && !migrate.Contains("NOKEY", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"MIGRATE of slot {slot} failed: {migrate.Trim()}");
            }

            Thread.Sleep(pause);
        }

        Expect(Command(to, "cluster", "setslot", s, "node", toId), "OK", "SETSLOT NODE (target)");
        Expect(Command(from, "cluster", "setslot", s, "node", toId), "OK", "SETSLOT NODE (source)");
        foreach (var other in Masters().Where(m => m != from && m != to))
        {
            Command(other, "cluster", "setslot", s, "node", toId);
        }
    }

    private static void Expect(string output, string expected, string what)
    {
        if (!output.Contains(expected, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{what} failed: {output.Trim()}");
        }
    }

    /// <summary>The CLUSTER INFO text of <paramref name="node"/>.</summary>
    public static string Info(RedisServer node) => Cli($"-p {node.Port} cluster info").Output;

    /// <summary>Waits (up to 30 s) until <paramref name="condition"/> holds.</summary>
    public void WaitUntil(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException(failure);
            }

            Thread.Sleep(100);
        }
    }

    /// <summary>The hash slot of <paramref name="key"/>: CRC16/XMODEM of its hash tag (or the whole key) mod 16384.</summary>
    public static int SlotOf(string key)
    {
        var open = key.IndexOf('{', StringComparison.Ordinal);
        if (open >= 0)
        {
            var close = key.IndexOf('}', open + 1);
            if (close > open + 1)
            {
                key = key[(open + 1)..close];
            }
        }

        ushort crc = 0;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(key))
        {
            crc ^= (ushort)(b << 8);
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }
        }

        return crc % 16384;
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }
    }

    /// <summary>Ports p whose cluster bus port p + 10000 is also free (so both stay under 65536).</summary>
    private static IEnumerable<int> ClusterPorts(int count)
    {
        var found = 0;
        for (var attempt = 0; found < count && attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(20000, 40000);
            if (IsFree(port) && IsFree(port + 10000))
            {
                found++;
                yield return port;
            }
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static (int ExitCode, string Output) Cli(string arguments) => Cli(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static (int ExitCode, string Output) Cli(IEnumerable<string> arguments)
    {
        var binary = new[] { "/usr/bin/redis-cli", "/usr/local/bin/redis-cli" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-cli is not installed; run tests/run.sh, which installs redis-tools with apt-get.");
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-h", "127.0.0.1" }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
