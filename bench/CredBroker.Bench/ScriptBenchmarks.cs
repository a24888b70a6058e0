using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Redis;
using CredBroker.Testing;
using StackExchange.Redis;

namespace CredBroker.Bench;

/// <summary>
/// What each hot-path script costs Redis, one kind at a time: the calls are made through the real
/// store and audit log, and Redis's own accounting (<c>INFO commandstats</c>, EVALSHA time per call)
/// is read before and after each kind. This is Redis's execution time only (not the round trip, not
/// the fsync, which happen outside the script), the figure issue 16 bounds at 25 µs per call.
/// </summary>
internal static class ScriptBenchmarks
{
    public static async Task<string> RunAsync(int count, TextWriter log)
    {
        using var redis = RedisServer.Start();
        using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        using var store = RedisLeaseStore.Connect(redis.ConnectionString);
        var signer = new HmacAuditSigner(RandomNumberGenerator.GetBytes(32));
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var leases = Enumerable.Range(0, count).Select(i => Lease(i, now)).ToList();
        var rows = new List<(string Name, double Micros, string Note)>();

        async Task Measure(string name, string note, Func<int, Task> call)
        {
            await server.ConfigResetStatisticsAsync();
            for (var i = 0; i < count; i++)
            {
                await call(i);
            }

            var stats = server.Info("commandstats").SelectMany(g => g).FirstOrDefault(p => p.Key == "cmdstat_evalsha").Value ?? "";
            var fields = stats.Split(',').Select(f => f.Split('=')).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1], StringComparer.Ordinal);
            var micros = double.Parse(fields.GetValueOrDefault("usec_per_call", "NaN"), CultureInfo.InvariantCulture);
            rows.Add((name, micros, note));
            log.WriteLine($"{name}: {micros:0.0} µs per call");
        }

        // Warm the script cache (EVALSHA after the first EVAL) outside the measurement.
        await store.OpenAsync(Lease(-1, now), LeaseQuota.Unlimited, default);
        var quota = new LeaseQuota(100, 10_000, TimeSpan.FromMinutes(1));
        await Measure("lease open (BeginTask), quotas on", "a new lease with concurrency and rate quotas", i => store.OpenAsync(leases[i], quota, default));
        await Measure("lease complete (CompleteTask), ownership checked", "returns the lease and its children", i => store.CompleteAsync(leases[i].LeaseId, leases[i].AgentId, now.AddSeconds(1), null, default));
        await Measure("lease get (IssueToken, RenewLease, Introspect)", "", i => store.GetAsync(leases[i].LeaseId, default));
        await Measure("sweeper claim of one shard, nothing due", "what an idle broker runs", i => store.ClaimExpiredAsync(i % LeaseIds.ShardCount, now, 1000, default));
        foreach (var batch in new[] { 1, 16, 64 })
        {
            using var audit = RedisAuditLog.Connect(redis.ConnectionString, signer, new AuditLogOptions { MaxBatch = batch, MaxAge = TimeSpan.FromDays(400) },
                keyPrefix: $"cb:{{audit-s{batch}}}:");
            await audit.AppendAsync(Event(0), default);
            await Measure($"audit append, {batch} record(s) per call", $"{(batch == 1 ? "one append at a time" : $"{batch} appends waiting at once")}; per record: see the note",
                async i =>
                {
                    if (i % batch == 0)
                    {
                        await Task.WhenAll(Enumerable.Range(0, batch).Select(j => audit.AppendAsync(Event(j), default)));
                    }
                });
            var last = rows[^1];
            rows[^1] = (last.Name, last.Micros, string.Create(CultureInfo.InvariantCulture, $"{last.Micros / Math.Max(1, audit.Batches.MeanBatch):0.0} µs per record (mean batch {audit.Batches.MeanBatch:0.0})"));
        }

        var report = new StringBuilder()
            .AppendLine("## Redis time per script call").AppendLine()
            .AppendLine($"`dotnet run -c Release --project bench/CredBroker.Bench -- scripts --count {count} --write docs/benchmarks.md`").AppendLine()
            .AppendLine($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} shared cores (load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}); "
                + $"{count} calls of each kind through the real store and audit log, one kind at a time; Redis's own `INFO commandstats` (EVALSHA µs per call, "
                + "the script's execution time inside Redis: no round trip, no fsync). Target: ≤ 25 µs per call.").AppendLine()
            .AppendLine("| script | µs per call | ≤ 25 µs | note |").AppendLine("|---|---:|---|---|");
        foreach (var (name, micros, note) in rows)
        {
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {micros:0.0} | {(micros <= 25 ? "met" : "**missed**")} | {note} |"));
        }

        return report.ToString();
    }

    private static Lease Lease(int i, DateTimeOffset now)
    {
        var agent = "bench-agent-" + (i % 64).ToString(CultureInfo.InvariantCulture);
        var task = "task-" + i.ToString(CultureInfo.InvariantCulture);
        return new Lease
        {
            LeaseId = LeaseIds.For(agent, task), AgentId = agent, TaskId = task, Owner = "owner@example.com", Purpose = "benchmark",
            Audience = "tickets-api", Scopes = ["tickets:read", "tickets:comment"], State = LeaseState.Active,
            CreatedAt = now, Deadline = now.AddMinutes(10), MaxDeadline = now.AddHours(1),
        };
    }

    private static AuditEvent Event(int i) => new()
    {
        Type = AuditEventType.TokenMinted, Time = DateTimeOffset.UtcNow, AgentId = "triage-agent", Owner = "support-team@example.com",
        TaskId = "bench-task-" + i.ToString(CultureInfo.InvariantCulture), LeaseId = "l07_abcdefghijklmnopqrstuvwxyz", Audience = "tickets-api",
        ScopesRequested = ["tickets:read"], ScopesGranted = ["tickets:read"], RuleIds = ["agent.audience", "agent.allowed_scopes"],
        Caller = "triage-agent (workload-jwt)", Details = new Dictionary<string, string> { ["operation"] = "begin_task", ["jti"] = Guid.NewGuid().ToString("N") },
    };
}
