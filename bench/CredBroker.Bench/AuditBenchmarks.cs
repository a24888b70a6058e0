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
        await Task.WhenAll(new[] { a, b }.SelectMany(replica => Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < count / 16; i++)
            {
                await replica.AppendAsync(Event(i), default);
            }
        }))));
        racing.Stop();
        var raced = count / 16 * 16;
        log.WriteLine($"2 replicas × 8 writers: {raced} appends in {racing.Elapsed.TotalSeconds:0.00} s");

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
        report.AppendLine(CultureInfo.InvariantCulture, $"| two replicas × 8 concurrent writers ({raced}) | {raced / racing.Elapsed.TotalSeconds:0} appends/s (the chain serialises appends) |");
        report.AppendLine(CultureInfo.InvariantCulture, $"| VerifyAudit over {result.RecordsChecked} records, {result.CheckpointsVerified} checkpoints | {verifying.Elapsed.TotalSeconds:0.00} s ({result.RecordsChecked / verifying.Elapsed.TotalSeconds:0} records/s) |");
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
