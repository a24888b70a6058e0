using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CredBroker.Bench.Mint;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Redis;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Bench;

/// <summary>
/// A hot agent on a Redis Cluster (issue 17): every key of an agent lives in its shard's hash slot, so
/// one agent's leases live on one master, and the audit chain is one key family on one master for the
/// whole broker. On a real 3-master cluster (AOF, <c>appendfsync always</c>, loopback), the Redis side
/// of a mint through the real store and audit log — BeginTask's lease open and its TokenMinted record,
/// then CompleteTask's completion and its LeaseCompleted record, the calls the broker makes — driven
/// by the same number of closed-loop workers for (a) one agent, (b) three agents pinned one per master,
/// (c) 48 agents spread by their hash, each with and without the audit records. Per master, Redis's own
/// <c>INFO commandstats</c> and the process's CPU over the same window show the share each took.
/// Ratios only within this one run (the machine is shared).
/// </summary>
internal static class HotAgentBenchmarks
{
    private static readonly LeaseQuota Quota = new(100_000, 1_000_000, TimeSpan.FromMinutes(1));

    public static async Task<string> RunAsync(int concurrency, int seconds, int rounds, TextWriter log)
    {
        using var cluster = RedisCluster.Start(appendOnly: true);
        using var admin = await ConnectionMultiplexer.ConnectAsync(cluster.ConnectionString + ",allowAdmin=true");
        var masters = cluster.Nodes.Select(n => new Master(n, admin.GetServer(n.ConnectionString))).ToList();
        foreach (var master in masters)
        {
            var info = (await master.Server.InfoAsync("server")).SelectMany(g => g).First(p => p.Key == "process_id").Value;
            master.Pid = int.Parse(info, CultureInfo.InvariantCulture);
        }

        // Which master serves each shard's hash slot, and the audit chain's.
        var shardMaster = Enumerable.Range(0, LeaseIds.ShardCount).Select(s => MasterIndex(cluster, masters, ShardTag(s))).ToArray();
        var auditMaster = MasterIndex(cluster, masters, RedisAuditLog.DefaultKeyPrefix);
        var agentsByMaster = Enumerable.Range(0, 10_000).Select(i => "agent-" + i.ToString("d4", CultureInfo.InvariantCulture))
            .GroupBy(a => shardMaster[LeaseIds.ShardOf(a)]).ToDictionary(g => g.Key, g => g.ToList());
        var hot = agentsByMaster.First(p => p.Key != auditMaster).Value[0];
        var pinned = Enumerable.Range(0, masters.Count).Select(m => agentsByMaster[m][0]).ToArray();
        var spread = Enumerable.Range(0, 48).Select(i => "spread-agent-" + i.ToString("d2", CultureInfo.InvariantCulture)).ToArray();
        var layouts = new (string Name, string[] Agents)[]
        {
            ($"(a) 1 hot agent (on M{shardMaster[LeaseIds.ShardOf(hot)] + 1})", [hot]),
            ("(b) 3 agents, one per master", pinned),
            ("(c) 48 agents spread by hash", spread),
        };

        var signer = new HmacAuditSigner(RandomNumberGenerator.GetBytes(32));
        using var store = RedisLeaseStore.Connect(cluster.ConnectionString);
        using var audit = RedisAuditLog.Connect(cluster.ConnectionString, signer, new AuditLogOptions());
        // Every configuration is measured in short windows, round after round, each round in a rotated order: on a shared
        // machine whose load comes and goes, every configuration then sees the same mix of quiet and busy moments.
        var configurations = new[] { true, false }.SelectMany(withAudit => layouts.Select(l => (l.Name, l.Agents, WithAudit: withAudit))).ToArray();
        var windows = configurations.Select(_ => new List<Window>()).ToArray();
        for (var round = 0; round < rounds; round++)
        {
            for (var k = 0; k < configurations.Length; k++)
            {
                var c = (k + round) % configurations.Length;
                var (name, agents, withAudit) = configurations[c];
                windows[c].Add(await MeasureAsync(name, agents, withAudit, concurrency, seconds, store, audit, masters, log));
            }
        }

        var rows = configurations.Select((c, i) => Row.Of(c.Name, c.Agents.Length, c.WithAudit, windows[i])).ToList();

        var verified = await AuditVerifier.VerifyAsync(audit, [signer], null, default);
        if (!verified.Intact)
        {
            throw new InvalidOperationException("the benchmark's audit chain does not verify: " + verified.Problem);
        }

        return Report(rows, masters, shardMaster, auditMaster, spread, concurrency, seconds, rounds);
    }

    private static async Task<Window> MeasureAsync(
        string name, string[] agents, bool withAudit, int concurrency, int seconds, RedisLeaseStore store, RedisAuditLog audit, List<Master> masters, TextWriter log)
    {
        var phase = 0; // 0 warm-up, 1 measuring, 2 done
        var run = Guid.NewGuid().ToString("N")[..8];
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var result = new Worker();
            for (var i = 0; Volatile.Read(ref phase) != 2; i++)
            {
                // Each worker takes the layout's agents in turn, so every agent gets an equal share whatever the concurrency.
                var agent = agents[(w + i) % agents.Length];
                var counted = Volatile.Read(ref phase) == 1;
                var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                var lease = Lease(agent, $"{run}-{w}-{i}", now);
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var opened = await store.OpenAsync(lease, Quota, default);
                    if (!opened.Created)
                    {
                        result.Fail(counted, "open refused: " + opened.Refusal);
                        continue;
                    }

                    if (withAudit)
                    {
                        await audit.AppendAsync(Event(AuditEventType.TokenMinted, lease, now), default);
                    }

                    var minted = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    var completed = await store.CompleteAsync(lease.LeaseId, agent, now, null, default);
                    if (completed.Outcome != TransitionOutcome.Applied)
                    {
                        result.Fail(counted, "complete: " + completed.Outcome);
                        continue;
                    }

                    if (withAudit)
                    {
                        await audit.AppendAsync(Event(AuditEventType.LeaseCompleted, lease, now), default);
                    }

                    if (counted && Volatile.Read(ref phase) == 1)
                    {
                        result.Mint.Add(minted);
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException or AuditUnavailableException or StoreUnavailableException)
                {
                    result.Fail(counted, e.GetType().Name + ": " + e.Message);
                }
            }

            return result;
        })).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(1));
        foreach (var master in masters)
        {
            await master.Server.ConfigResetStatisticsAsync();
            master.CpuBefore = ProcessCpu.Seconds(master.Pid) ?? 0;
        }

        var clientBefore = Process.GetCurrentProcess().TotalProcessorTime;

        var clock = Stopwatch.StartNew();
        Volatile.Write(ref phase, 1);
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref phase, 2);
        var elapsed = clock.Elapsed.TotalSeconds;
        var clientCores = (Process.GetCurrentProcess().TotalProcessorTime - clientBefore).TotalSeconds / elapsed;
        var perMaster = new List<(long Scripts, double CpuSeconds)>();
        foreach (var master in masters)
        {
            var cpu = (ProcessCpu.Seconds(master.Pid) ?? 0) - master.CpuBefore;
            var stats = (await master.Server.InfoAsync("commandstats")).SelectMany(g => g)
                .ToDictionary(p => p.Key, p => p.Value.Split(',').Select(f => f.Split('=')).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1]));
            long Calls(string command) => stats.TryGetValue("cmdstat_" + command, out var s) ? long.Parse(s["calls"], CultureInfo.InvariantCulture) : 0;
            perMaster.Add((Calls("evalsha") + Calls("eval"), cpu));
        }

        var results = await Task.WhenAll(workers);
        var mint = new LatencySamples();
        foreach (var r in results)
        {
            mint.AddRange(r.Mint);
        }

        var failed = results.Sum(r => r.Failed);
        var failures = results.SelectMany(r => r.Failures).Distinct().Take(3).ToList();
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"HOT layout=\"{name}\" audit={(withAudit ? "on" : "off")} agents={agents.Length} workers={concurrency} seconds={elapsed:0.00} mints_per_s={mint.Count / elapsed:0} p50_ms={mint.Percentile(0.5):0.00} p99_ms={mint.Percentile(0.99):0.00} failed={failed} cpu_client={clientCores:0.00} ")
            + string.Join(' ', perMaster.Select((m, i) => string.Create(CultureInfo.InvariantCulture, $"m{i + 1}_scripts={m.Scripts} m{i + 1}_cpu={m.CpuSeconds / elapsed:0.00}"))));
        foreach (var failure in failures)
        {
            log.WriteLine("  failure: " + failure);
        }

        return new Window(elapsed, mint, failed, perMaster, clientCores * elapsed);
    }

    private static string Report(List<Row> rows, List<Master> masters, int[] shardMaster, int auditMaster, string[] spread, int concurrency, int seconds, int rounds)
    {
        var report = new StringBuilder();
        void Line(string text) => report.AppendLine(text);
        Line("## A hot agent on a Redis Cluster");
        Line("");
        Line(string.Create(CultureInfo.InvariantCulture, $"`dotnet run -c Release --project bench/CredBroker.Bench -- hot-agent --concurrency {concurrency} --seconds {seconds} --rounds {rounds} --write docs/benchmarks.md` (about {(rounds * 6 * (seconds + 1) + 15) / 60.0:0.0} minutes)"));
        Line("");
        Line(FormattableString.Invariant($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} shared cores (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}): ")
            + "a real Redis Cluster of 3 masters on loopback, `appendonly yes`, `appendfsync always`, no replicas. One \"mint\" is the Redis side of BeginTask + CompleteTask "
            + "through the real store and audit log (lease open script with the agent's quotas checked, TokenMinted audit record, completion script, LeaseCompleted "
            + "audit record; the audit log's group commit on). "
            + FormattableString.Invariant($"{concurrency} closed-loop workers in every row; each row is {rounds} windows of {seconds} s (after 1 s of warm-up each), taken round by round in a rotated order so that the machine's changing load falls on every row alike; ")
            + "p50/p99 are of the BeginTask part (open + its audit record). "
            + "No broker process: gRPC, authentication and signing are left out so that only where Redis puts the work is measured (the broker tier is stateless and scales out). "
            + "The machine is shared and noisy: compare rows of this run only.");
        Line("");
        Line("Where the keys live in this run:");
        Line("");
        Line("| master | shards (hash tags `{sNN}`) | of the 48 spread agents | audit chain (`cb:{audit}:`) |");
        Line("|---|---|---:|---|");
        for (var m = 0; m < masters.Count; m++)
        {
            var shards = Enumerable.Range(0, shardMaster.Length).Where(s => shardMaster[s] == m).Select(s => s.ToString("x2", CultureInfo.InvariantCulture)).ToList();
            var agents = spread.Count(a => shardMaster[LeaseIds.ShardOf(a)] == m);
            Line(string.Create(CultureInfo.InvariantCulture, $"| M{m + 1} | {shards.Count}: {string.Join(' ', shards)} | {agents} | {(m == auditMaster ? "**here**" : "")} |"));
        }

        Line("");
        Line("| layout | audit records | mints/s (windows min-max) | ÷ (c) same audit | p50 | p99 | failed | " + string.Join(" | ", masters.Select((_, i) => $"M{i + 1} scripts / CPU")) + " | load client CPU | busiest master: CPU per mint → one-core ceiling |");
        Line("|---|---|---:|---:|---:|---:|---:|" + string.Concat(masters.Select(_ => "---:|")) + "---:|---|");
        foreach (var row in rows)
        {
            var baseline = rows.First(r => r.WithAudit == row.WithAudit && r.Agents == spread.Length);
            var scripts = Math.Max(1, row.Masters.Sum(m => m.Scripts));
            Line(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Name} | {(row.WithAudit ? "on" : "off")} | {row.Rate:0} ({row.MinRate:0}-{row.MaxRate:0}) | {row.Rate / baseline.Rate:0.00} | {row.P50:0.00} ms | {row.P99:0.00} ms | {row.Failed} | ")
                + string.Join(" | ", row.Masters.Select(m => string.Create(CultureInfo.InvariantCulture, $"{100.0 * m.Scripts / scripts:0}% / {m.Cores:0.00}")))
                + string.Create(CultureInfo.InvariantCulture, $" | {row.ClientCores:0.00} | {Ceiling(row)} |"));
        }

        // In (a) with audit records, the audit chain's master holds no lease key (the hot agent is chosen off it): its CPU is the chain's alone.
        var chain = rows.First(r => r.WithAudit && r.Agents == 1);
        var chainCores = chain.Masters[auditMaster].Cores;
        Line("");
        Line(FormattableString.Invariant(
            $"The audit chain alone (row (a) with audit records, M{auditMaster + 1} holds no lease key there): {chainCores / Math.Max(1, chain.Rate) * 1e6:0} µs of its master's CPU per mint (two records), ")
            + FormattableString.Invariant($"so one core carries about {(chainCores > 0 ? chain.Rate / chainCores : 0):0} mints/s of audit records, whatever the number of agents or masters."));

        Line("");
        Line("\"scripts\": the master's share of all script calls (EVALSHA, from `INFO commandstats` reset at the start of the window); "
            + "CPU: cores the master's redis-server process used over the window (from /proc, including its AOF writes and fsyncs). "
            + "An audit batch is one script call for many records, so the audit master's share of calls understates its share of work; its CPU shows it. "
            + "The one-core ceiling divides the rate by the busiest master's CPU: where that master would saturate if nothing else did (a linear projection; "
            + "with `appendfsync always` the disk's fsync rate can bind first, though Redis fsyncs once per event-loop pass for all the replies of that pass).");
        return report.ToString();
    }

    /// <summary>The busiest master's CPU per mint and the rate at which it would reach one full core (Redis runs commands on one thread), linearly projected.</summary>
    private static string Ceiling(Row row)
    {
        var busiest = row.Masters.Select((m, i) => (m.Cores, Index: i)).MaxBy(m => m.Cores);
        return busiest.Cores <= 0 || row.Rate <= 0
            ? "n/a"
            : FormattableString.Invariant($"M{busiest.Index + 1}: {busiest.Cores / row.Rate * 1e6:0} µs → ~{row.Rate / busiest.Cores:0} mints/s");
    }

    private static string ShardTag(int shard) => "cb:{s" + shard.ToString("x2", CultureInfo.InvariantCulture) + "}:";

    private static int MasterIndex(RedisCluster cluster, List<Master> masters, string key)
    {
        var node = cluster.MasterOf(key);
        return masters.FindIndex(m => m.Node.Port == node.Port);
    }

    private static Lease Lease(string agent, string task, DateTimeOffset now) => new()
    {
        LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "owner@example.com", Purpose = "benchmark",
        Audience = "tickets-api", Scopes = ["tickets:read"], State = LeaseState.Active,
        CreatedAt = now, Deadline = now.AddMinutes(10), MaxDeadline = now.AddMinutes(30),
    };

    private static AuditEvent Event(AuditEventType type, Lease lease, DateTimeOffset now) => new()
    {
        Type = type, Time = now, AgentId = lease.AgentId, Owner = lease.Owner, TaskId = lease.TaskId, LeaseId = lease.LeaseId, Audience = lease.Audience,
        ScopesRequested = lease.Scopes, ScopesGranted = lease.Scopes, RuleIds = ["agent.audience", "agent.allowed_scopes"],
        Caller = lease.AgentId + " (workload-jwt)", Details = new Dictionary<string, string> { ["jti"] = Guid.NewGuid().ToString("N") },
    };

    private sealed class Master(RedisServer node, IServer server)
    {
        public RedisServer Node { get; } = node;

        public IServer Server { get; } = server;

        public int Pid { get; set; }

        public double CpuBefore { get; set; }
    }

    private sealed record MasterShare(long Scripts, double Cores);

    /// <summary>One measured window of one configuration.</summary>
    private sealed record Window(double Seconds, LatencySamples Mint, long Failed, List<(long Scripts, double CpuSeconds)> Masters, double ClientCpuSeconds);

    /// <summary>A configuration over all its windows: totals over total time, percentiles over every sample.</summary>
    private sealed record Row(string Name, int Agents, bool WithAudit, double Rate, double MinRate, double MaxRate, double P50, double P99, long Failed, List<MasterShare> Masters, double ClientCores)
    {
        public static Row Of(string name, int agents, bool withAudit, List<Window> windows)
        {
            var seconds = windows.Sum(w => w.Seconds);
            var mint = new LatencySamples();
            foreach (var window in windows)
            {
                mint.AddRange(window.Mint);
            }

            var masters = Enumerable.Range(0, windows[0].Masters.Count)
                .Select(m => new MasterShare(windows.Sum(w => w.Masters[m].Scripts), windows.Sum(w => w.Masters[m].CpuSeconds) / seconds)).ToList();
            return new Row(name, agents, withAudit, mint.Count / seconds, windows.Min(w => w.Mint.Count / w.Seconds), windows.Max(w => w.Mint.Count / w.Seconds),
                mint.Percentile(0.5), mint.Percentile(0.99), windows.Sum(w => w.Failed), masters, windows.Sum(w => w.ClientCpuSeconds) / seconds);
        }
    }

    private sealed class Worker
    {
        public LatencySamples Mint { get; } = new();

        public List<string> Failures { get; } = [];

        public long Failed { get; private set; }

        public void Fail(bool counted, string failure)
        {
            if (counted)
            {
                Failed++;
            }

            if (Failures.Count < 3 && !Failures.Contains(failure))
            {
                Failures.Add(failure);
            }
        }
    }
}
