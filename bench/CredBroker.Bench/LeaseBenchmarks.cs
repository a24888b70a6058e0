using System.Diagnostics;
using System.Globalization;
using System.Text;
using CredBroker.Core.Leases;
using CredBroker.Redis;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Bench;

/// <summary>
/// The lease store under load on real redis-server processes: memory per active lease, a mass
/// expiry swept by one and by two replicas, and revocation throughput under three persistence
/// settings side by side (ratios matter; this machine is shared and noisy).
/// </summary>
internal static class LeaseBenchmarks
{
    private const int Concurrency = 64;
    private const int MemoryLeases = 10_000;
    private const int RevokeLeases = 5_000;
    private static readonly TimeSpan SweepInterval = LeaseSweeper.DefaultInterval;

    public static async Task<string> RunAsync(int sweepLeases, TextWriter log)
    {
        var report = new StringBuilder();
        report.AppendLine("## Leases (Redis)").AppendLine()
            .AppendLine($"`dotnet run -c Release --project bench/CredBroker.Bench -- leases --leases {sweepLeases} --write docs/benchmarks.md`").AppendLine()
            .AppendLine($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores, redis-server {RedisVersion()}; "
                + "every figure comes from this one run against local redis-server processes on loopback.").AppendLine();

        using (var redis = RedisServer.Start())
        {
            await MemoryAsync(redis, report, log);
            await SweepAsync(redis, sweepLeases, replicas: 1, report, log);
            await SweepAsync(redis, sweepLeases, replicas: 2, report, log);
        }

        await RevocationsAsync(report, log);
        return report.ToString();
    }

    private static async Task MemoryAsync(RedisServer redis, StringBuilder report, TextWriter log)
    {
        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var server = raw.GetServer(raw.GetEndPoints()[0]);
        await server.FlushAllDatabasesAsync();
        using var store = RedisLeaseStore.Connect(redis.ConnectionString);
        var before = UsedMemory(server);
        var leases = await OpenAsync(store, MemoryLeases, DateTimeOffset.UtcNow.AddHours(1));
        var after = UsedMemory(server);
        var perLease = (after - before) / (double)MemoryLeases;

        var sample = leases[0];
        var hashKey = server.Keys(pattern: "cb:*:lease:" + sample.LeaseId).Single();
        var hashBytes = (long)await raw.GetDatabase().ExecuteAsync("MEMORY", "USAGE", hashKey);
        log.WriteLine($"memory: {perLease:0} B per active lease (used_memory delta over {MemoryLeases}); hash {hashBytes} B");

        report.AppendLine("### Memory per active lease").AppendLine()
            .AppendLine("| measure | bytes |").AppendLine("|---|---:|")
            .AppendLine($"| `used_memory` delta / {MemoryLeases:N0} active leases (hash, deadline index, agent open index, shard listing index) | **{perLease:0}** |")
            .AppendLine($"| `MEMORY USAGE` of one lease hash (3 scopes, purpose, audience) | {hashBytes} |").AppendLine()
            .AppendLine($"Target ≤ 1 KB per lease: **{(perLease <= 1024 ? "met" : "missed")}**.").AppendLine();
    }

    private static async Task SweepAsync(RedisServer redis, int count, int replicas, StringBuilder report, TextWriter log)
    {
        using (var raw = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true"))
        {
            await raw.GetServer(raw.GetEndPoints()[0]).FlushAllDatabasesAsync();
        }

        var stores = Enumerable.Range(0, replicas).Select(_ => RedisLeaseStore.Connect(redis.ConnectionString)).ToList();
        try
        {
            // Estimate the open rate, then give every lease the same deadline just after the last open.
            var probe = Stopwatch.StartNew();
            await OpenAsync(stores[0], 2_000, DateTimeOffset.UtcNow.AddSeconds(1));
            var estimate = TimeSpan.FromTicks(probe.Elapsed.Ticks * count / 2_000);
            var deadline = DateTimeOffset.FromUnixTimeMilliseconds((DateTimeOffset.UtcNow + (estimate * 3) + TimeSpan.FromSeconds(3)).ToUnixTimeMilliseconds());
            var opening = Stopwatch.StartNew();
            await OpenAsync(stores[0], count, deadline);
            var openRate = count / opening.Elapsed.TotalSeconds;
            var openedBy = DateTimeOffset.UtcNow;
            if (openedBy >= deadline)
            {
                throw new InvalidOperationException("Opening took longer than the deadline allowed; the measurement would be meaningless. Rerun on a quieter machine.");
            }

            log.WriteLine($"sweep x{replicas}: opened {count} leases in {opening.Elapsed.TotalSeconds:0.0} s ({openRate:0}/s), deadline in {(deadline - openedBy).TotalSeconds:0.0} s");

            // Drain the 2,000 probe leases (already due) so the measurement sees only the mass expiry.
            await new LeaseSweeper(stores[0], TimeProvider.System).SweepOnceAsync(default);

            using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
            var adminServer = admin.GetServer(admin.GetEndPoints()[0]);
            await adminServer.ConfigResetStatisticsAsync();
            var expired = 0;
            var maxLag = TimeSpan.Zero;
            var done = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
            var gate = new object();
            using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3) + (deadline - DateTimeOffset.UtcNow));
            var sweepers = stores.Select(store => new LeaseSweeper(store, TimeProvider.System).RunAsync(SweepInterval, result =>
            {
                lock (gate)
                {
                    expired += result.Expired;
                    maxLag = result.MaxLag > maxLag ? result.MaxLag : maxLag;
                    if (expired >= count)
                    {
                        done.TrySetResult(DateTimeOffset.UtcNow);
                    }
                }
            }, e => log.WriteLine("sweep error: " + e.Message), stop.Token)).ToList();

            var finished = await done.Task.WaitAsync(stop.Token);
            await stop.CancelAsync();
            await Task.WhenAll(sweepers);
            var allExpiredAfter = finished - deadline;
            var scriptMs = ScriptMicroseconds(adminServer) / 1000.0;
            log.WriteLine($"sweep x{replicas}: all {expired} expired {allExpiredAfter.TotalMilliseconds:0} ms after the deadline (max lag at claim {maxLag.TotalMilliseconds:0} ms); "
                + $"Redis spent {scriptMs:0} ms in scripts ({scriptMs * 1000 / count:0.0} µs per lease)");

            if (replicas == 1)
            {
                report.AppendLine($"### Mass expiry: {count:N0} leases with the same deadline").AppendLine()
                    .AppendLine($"Leases opened at {openRate:0} opens/s (store only, {Concurrency} concurrent). Sweepers wake just after the next deadline "
                        + $"the store reports, else poll every {SweepInterval.TotalMilliseconds:0} ms (jittered; the product defaults), and claim up to 1,000 leases per script call, shard by shard.").AppendLine()
                    .AppendLine("| replicas sweeping | every lease expired after its deadline by | largest lag seen at claim | Redis time in claim scripts |").AppendLine("|---:|---:|---:|---:|");
            }

            report.AppendLine($"| {replicas} | **{allExpiredAfter.TotalMilliseconds:0} ms** | {maxLag.TotalMilliseconds:0} ms | {scriptMs:0} ms ({scriptMs * 1000 / count:0.0} µs/lease) |");
            if (replicas == 2)
            {
                report.AppendLine().AppendLine($"Target: every lease of the {count:N0} expired ≤ 1 s after its deadline: "
                    + $"**{(allExpiredAfter <= TimeSpan.FromSeconds(1) ? "met" : "missed")}** in this run. Nothing is claimed twice (the store contract proves it with parallel claimers).").AppendLine();
            }
        }
        finally
        {
            foreach (var store in stores)
            {
                store.Dispose();
            }
        }
    }

    private static async Task RevocationsAsync(StringBuilder report, TextWriter log)
    {
        var settings = new (string Name, string Arguments)[]
        {
            ("no persistence", "--appendonly no"),
            ("AOF, appendfsync everysec", "--appendonly yes --appendfsync everysec"),
            ("AOF, appendfsync always (the documented setting)", "--appendonly yes --appendfsync always"),
        };
        var rates = new List<(string Name, double Rate)>();
        foreach (var (name, arguments) in settings)
        {
            using var redis = RedisServer.Start(false, RedisServer.FreePort(), arguments);
            using var store = RedisLeaseStore.Connect(redis.ConnectionString);
            var leases = await OpenAsync(store, RevokeLeases, DateTimeOffset.UtcNow.AddHours(1));
            var watch = Stopwatch.StartNew();
            await ForEachAsync(leases, lease => store.RevokeAsync(lease.LeaseId, "bench", "bench", DateTimeOffset.UtcNow, null, default));
            var rate = RevokeLeases / watch.Elapsed.TotalSeconds;
            rates.Add((name, rate));
            log.WriteLine($"revocations ({name}): {rate:0}/s");
        }

        report.AppendLine($"### Revocations per second ({RevokeLeases:N0} leases, {Concurrency} concurrent, one connection)").AppendLine()
            .AppendLine("Each revoke is one script: state change, deny entry with TTL, index cleanup and one revocation-log entry (XADD).").AppendLine()
            .AppendLine("| Redis persistence | revocations/s | vs. no persistence |").AppendLine("|---|---:|---:|");
        foreach (var (name, rate) in rates)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {rate:0} | {rate / rates[0].Rate:0.00}× |");
        }

        report.AppendLine();
    }

    private static async Task<List<Lease>> OpenAsync(ILeaseStore store, int count, DateTimeOffset deadline)
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var leases = Enumerable.Range(0, count).Select(i =>
        {
            var agent = "bench-agent-" + (i % 64).ToString(CultureInfo.InvariantCulture);
            var task = "task-" + Guid.NewGuid().ToString("N");
            return new Lease
            {
                LeaseId = LeaseIds.For(agent, task),
                AgentId = agent,
                TaskId = task,
                Owner = "owner@example.com",
                Purpose = "benchmark task",
                Audience = "bench-api",
                Scopes = ["bench:read", "bench:write", "tickets:comment"],
                State = LeaseState.Active,
                CreatedAt = now,
                Deadline = deadline,
                MaxDeadline = deadline.AddHours(1),
            };
        }).ToList();
        await ForEachAsync(leases, lease => store.OpenAsync(lease, LeaseQuota.Unlimited, default));
        return leases;
    }

    private static Task ForEachAsync<T, TResult>(IEnumerable<T> items, Func<T, Task<TResult>> action) =>
        Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (item, _) => await action(item));

    /// <summary>Time Redis spent executing scripts since the last CONFIG RESETSTAT (its own clock, not ours).</summary>
    private static long ScriptMicroseconds(IServer server) =>
        server.Info("commandstats").SelectMany(g => g)
            .Where(p => p.Key is "cmdstat_eval" or "cmdstat_evalsha")
            .Sum(p => long.Parse(p.Value.Split(',').First(kv => kv.StartsWith("usec=", StringComparison.Ordinal))[5..], CultureInfo.InvariantCulture));

    private static long UsedMemory(IServer server) =>
        long.Parse(server.Info("memory").SelectMany(g => g).First(p => p.Key == "used_memory").Value, CultureInfo.InvariantCulture);

    private static string RedisVersion()
    {
        using var process = Process.Start(new ProcessStartInfo("redis-server", "--version") { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Split(' ').FirstOrDefault(p => p.StartsWith("v=", StringComparison.Ordinal))?[2..] ?? "unknown";
    }
}
