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

    public static RedisCluster Start()
    {
        var cluster = new RedisCluster();
        try
        {
            foreach (var port in ClusterPorts(3))
            {
                cluster._nodes.Add(RedisServer.Start(false, port, "--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 3000"));
            }

            var create = Cli("--cluster create " + string.Join(" ", cluster._nodes.Select(n => n.ConnectionString)) + " --cluster-replicas 0 --cluster-yes");
            if (create.ExitCode != 0)
            {
                throw new InvalidOperationException("redis-cli --cluster create failed: " + create.Output);
            }

            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!cluster._nodes.All(n => Cli($"-p {n.Port} cluster info").Output.Contains("cluster_state:ok", StringComparison.Ordinal)))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException("The test cluster did not reach cluster_state:ok.");
                }

                Thread.Sleep(100);
            }

            return cluster;
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
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

    private static (int ExitCode, string Output) Cli(string arguments)
    {
        var binary = new[] { "/usr/bin/redis-cli", "/usr/local/bin/redis-cli" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-cli is not installed; run tests/run.sh, which installs redis-tools with apt-get.");
        using var process = Process.Start(new ProcessStartInfo(binary, "-h 127.0.0.1 " + arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
