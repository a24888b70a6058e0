using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CredBroker.Core.Audit;
using CredBroker.Redis;
using CredBroker.Testing;

namespace CredBroker.Bench;

/// <summary>
/// The audit chain on Redis (`appendfsync always`, as in production): append latency one at a
/// time, throughput with two replicas racing on the compare-and-set head, and verification speed.
/// </summary>
internal static class AuditBenchmarks
{
    public static async Task<string> RunAsync(int count, TextWriter log)
    {
        using var redis = RedisServer.Start(appendOnly: true);
        var signer = new HmacAuditSigner(RandomNumberGenerator.GetBytes(32));
        var options = new AuditLogOptions { CheckpointInterval = 100 };
        using var a = RedisAuditLog.Connect(redis.ConnectionString, signer, options);
        using var b = RedisAuditLog.Connect(redis.ConnectionString, signer, options);

        var latencies = new List<double>(count);
        var sequential = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await a.AppendAsync(Event(i), default);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        sequential.Stop();
        latencies.Sort();
        log.WriteLine($"sequential: {count} appends in {sequential.Elapsed.TotalSeconds:0.00} s");

        var racing = Stopwatch.StartNew();
        await Task.WhenAll(new[] { a, b }.SelectMany(replica => Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < count / 64; i++)
            {
                await replica.AppendAsync(Event(i), default);
            }
        }))));
        racing.Stop();
        var raced = count / 64 * 64;
        log.WriteLine($"2 replicas × 32 writers: {raced} appends in {racing.Elapsed.TotalSeconds:0.00} s");

        // Group commit: 64 concurrent callers on one replica, with the batch capped at each size in turn
        // (1 = one record per script call, the behaviour before group commit). Same Redis, same run.
        var bySize = new List<(int MaxBatch, double Rate, double Mean, double P99)>();
        foreach (var maxBatch in new[] { 1, 4, 16, 64, 256 })
        {
            using var log1 = RedisAuditLog.Connect(redis.ConnectionString, signer, options with { MaxBatch = maxBatch }, keyPrefix: $"cb:{{audit-batch{maxBatch}}}:");
            var waits = new List<double>(count);
            var timer = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, 64).Select(w => Task.Run(async () =>
            {
                for (var i = 0; i < count / 64; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await log1.AppendAsync(Event(i), default);
                    lock (waits)
                    {
                        waits.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
                }
            })));
            timer.Stop();
            waits.Sort();
            bySize.Add((maxBatch, waits.Count / timer.Elapsed.TotalSeconds, log1.Batches.MeanBatch, Percentile(waits, 0.99)));
            log.WriteLine($"max batch {maxBatch}: {waits.Count / timer.Elapsed.TotalSeconds:0} appends/s, mean batch {log1.Batches.MeanBatch:0.0}");
        }

        var verifying = Stopwatch.StartNew();
        var result = await AuditVerifier.VerifyAsync(a, [signer], null, default);
        verifying.Stop();
        if (!result.Intact)
        {
            throw new InvalidOperationException("the benchmark chain does not verify: " + result.Problem);
        }

        var report = new StringBuilder();
        report.AppendLine("## Audit chain (Redis)");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"Redis 7 with `appendonly yes`, `appendfsync always`, loopback, 2 shared cores; events of ~500 bytes. Rerun: `dotnet run -c Release --project bench/CredBroker.Bench -- audit --count {count}`.");
        report.AppendLine();
        report.AppendLine("| measurement | result |");
        report.AppendLine("|---|---|");
        report.AppendLine(CultureInfo.InvariantCulture, $"| one replica, one append at a time ({count}) | {count / sequential.Elapsed.TotalSeconds:0} appends/s; p50 {Percentile(latencies, 0.50):0.00} ms, p99 {Percentile(latencies, 0.99):0.00} ms |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| two replicas × 32 concurrent writers ({raced}), group commit | {raced / racing.Elapsed.TotalSeconds:0} appends/s (each replica writes batches; the head's compare-and-set orders them) |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| VerifyAudit over {result.RecordsChecked} records, {result.CheckpointsVerified} checkpoints | {verifying.Elapsed.TotalSeconds:0.00} s ({result.RecordsChecked / verifying.Elapsed.TotalSeconds:0} records/s) |");
        report.AppendLine();
        report.AppendLine("Group commit: 64 concurrent appenders on one replica, the batch capped at each size (1 = one record per call, as before group commit):");
        report.AppendLine();
        report.AppendLine("| max batch | appends/s | ÷ max batch 1 | mean records per batch | p99 wait |");
        report.AppendLine("|---:|---:|---:|---:|---:|");
        foreach (var (maxBatch, rate, mean, p99) in bySize)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"| {maxBatch} | {rate:0} | {rate / bySize[0].Rate:0.0} | {mean:0.0} | {p99:0.0} ms |");
        }

        var text = report.ToString();
        log.Write(text);
        return text;
    }

    private static AuditEvent Event(int i) => new()
    {
        Type = AuditEventType.TokenMinted,
        Time = DateTimeOffset.UtcNow,
        AgentId = "triage-agent",
        Owner = "support-team@example.com",
        TaskId = "bench-task-" + i.ToString(CultureInfo.InvariantCulture),
        LeaseId = "l07_abcdefghijklmnopqrstuvwxyz",
        Audience = "tickets-api",
        ScopesRequested = ["tickets:read", "tickets:comment"],
        ScopesGranted = ["tickets:read", "tickets:comment"],
        RuleIds = ["agent.audience", "agent.allowed_scopes", "agent.lease_ttl_cap"],
        Caller = "triage-agent (workload-jwt)",
        Details = new Dictionary<string, string> { ["operation"] = "begin_task", ["jti"] = Guid.NewGuid().ToString("N"), ["exp"] = "2030-01-01T00:00:00.0000000+00:00" },
    };

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];
}
