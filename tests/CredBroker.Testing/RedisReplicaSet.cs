using System.Diagnostics;

namespace CredBroker.Testing;

/// <summary>
/// A primary and its replicas (Debian's redis-server, <c>--replicaof</c>, loopback ports), optionally
/// watched by Sentinels (<see cref="StartSentinels"/>). Start returns once every replica reports
/// its link to the primary up.
/// </summary>
public sealed class RedisReplicaSet : IDisposable
{
    public const string ServiceName = "credbroker";
    private readonly List<RedisServer> _replicas = [];
    private readonly List<RedisServer> _sentinels = [];

    private RedisReplicaSet(RedisServer primary) => Primary = primary;

    public RedisServer Primary { get; }

    public IReadOnlyList<RedisServer> Replicas => _replicas;

    public IReadOnlyList<RedisServer> Sentinels => _sentinels;

    /// <summary>The configuration a broker uses through the Sentinels: every Sentinel and the service name.</summary>
    public string SentinelConfiguration => string.Join(",", _sentinels.Select(s => s.ConnectionString)) + ",serviceName=" + ServiceName;

    /// <param name="replicas">How many replicas.</param>
    /// <param name="password">requirepass (and masterauth) of every server; unset = none.</param>
    public static RedisReplicaSet Start(int replicas = 1, string? password = null)
    {
        var extraArguments = password is null ? "" : $"--requirepass \"{password}\" --masterauth \"{password}\"";
        // No 5 s wait for more replicas before a full sync (Redis's default diskless-sync delay).
        var set = new RedisReplicaSet(RedisServer.Start(appendOnly: true, RedisServer.FreePort(), "--repl-diskless-sync-delay 0 " + extraArguments));
        try
        {
            for (var i = 0; i < replicas; i++)
            {
                set._replicas.Add(RedisServer.Start(appendOnly: true, RedisServer.FreePort(),
                    $"--replicaof 127.0.0.1 {set.Primary.Port} --replica-announce-ip 127.0.0.1 --repl-diskless-sync-delay 0 {extraArguments}"));
            }

            set.CliPassword = password;
            set.WaitForLinks(set._replicas);
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Waits (up to 30 s) until each of <paramref name="replicas"/> reports master_link_status:up.</summary>
    public void WaitForLinks(IEnumerable<RedisServer> replicas)
    {
        foreach (var replica in replicas)
        {
            Until(() => Cli(replica.Port, "INFO replication").Contains("master_link_status:up", StringComparison.Ordinal), $"replica on port {replica.Port} never linked to its primary");
        }
    }

    /// <summary>
    /// <paramref name="count"/> Sentinels (redis-sentinel, or redis-server --sentinel) watching the
    /// primary with quorum <paramref name="quorum"/> and fast failure detection; returns once each
    /// of them has found every replica.
    /// </summary>
    /// <param name="sentinelArguments">more sentinel.conf lines (e.g. <c>sentinel auth-pass</c>, <c>requirepass</c>).</param>
    public void StartSentinels(int count = 1, int quorum = 1, int downAfterMilliseconds = 1000, params string[] sentinelArguments)
    {
        for (var i = 0; i < count; i++)
        {
            var port = RedisServer.FreePort();
            var sentinel = RedisServer.StartSentinel(port, dir => string.Join('\n', (string[])
            [
                $"port {port}",
                "bind 127.0.0.1",
                $"dir {dir}",
                "sentinel resolve-hostnames no",
                "sentinel announce-ip 127.0.0.1",
                $"sentinel monitor {ServiceName} 127.0.0.1 {Primary.Port} {quorum}",
                $"sentinel down-after-milliseconds {ServiceName} {downAfterMilliseconds}",
                $"sentinel failover-timeout {ServiceName} 10000",
                $"sentinel parallel-syncs {ServiceName} 1",
                .. sentinelArguments.Select(line => line.Replace("{service}", ServiceName, StringComparison.Ordinal)),
            ]) + "\n");
            _sentinels.Add(sentinel);
        }

        foreach (var sentinel in _sentinels)
        {
            Until(() => Cli(sentinel.Port, $"SENTINEL replicas {ServiceName}", null).Split('\n').Count(l => l.Trim() == "ip") >= _replicas.Count,
                $"sentinel on port {sentinel.Port} did not discover the replicas");
        }
    }

    /// <summary>The primary's port as <paramref name="sentinel"/> reports it (everything is on 127.0.0.1); -1 when it gives no answer.</summary>
    public int SentinelPrimaryPort(RedisServer sentinel)
    {
        var lines = Cli(sentinel.Port, $"SENTINEL get-master-addr-by-name {ServiceName}", null).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return lines.Length >= 2 && int.TryParse(lines[1].Trim(), System.Globalization.CultureInfo.InvariantCulture, out var port) ? port : -1;
    }

    public void Dispose()
    {
        foreach (var server in _sentinels.Concat(_replicas).Append(Primary))
        {
            server.Dispose();
        }
    }

    /// <summary>A password for redis-cli (REDISCLI_AUTH) when the servers require one.</summary>
    public string? CliPassword { get; set; }

    /// <summary>redis-cli against a loopback port; its standard output.</summary>
    public string Cli(int port, string arguments) => Cli(port, arguments, CliPassword);

    /// <summary>redis-cli against a loopback port, with <paramref name="password"/> if given; its standard output.</summary>
    public static string Cli(int port, string arguments, string? password)
    {
        var binary = new[] { "/usr/bin/redis-cli", "/usr/local/bin/redis-cli" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-cli is not installed; run tests/run.sh, which installs redis-tools with apt-get.");
        var start = new ProcessStartInfo(binary, $"-h 127.0.0.1 -p {port} {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (password is not null)
        {
            start.Environment["REDISCLI_AUTH"] = password;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return output;
    }

    private static void Until(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException(failure);
            }

            Thread.Sleep(50);
        }
    }
}
