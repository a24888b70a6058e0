using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace CredBroker.Bench.Mint;

/// <summary>What one load window measured.</summary>
internal sealed record LoadResult(
    string Mode, int Concurrency, int Connections, double Seconds, long BeginOk, long BeginFailed, long CompleteOk, long CompleteFailed,
    LatencySamples Begin, LatencySamples Complete, IReadOnlyDictionary<string, double> CoresUsed, IReadOnlyList<string> Failures)
{
    public double MintsPerSecond => BeginOk / Seconds;

    public long Failed => BeginFailed + CompleteFailed;

    /// <summary>One machine-readable line for bench/run.sh.</summary>
    public string ToLine() => string.Create(CultureInfo.InvariantCulture,
        $"LOAD mode={Mode} concurrency={Concurrency} connections={Connections} seconds={Seconds:0.00} begin_ok={BeginOk} begin_failed={BeginFailed} " +
        $"complete_ok={CompleteOk} complete_failed={CompleteFailed} rps={MintsPerSecond:0} mean_ms={Begin.Mean:0.00} p50_ms={Begin.Percentile(0.5):0.00} " +
        $"p90_ms={Begin.Percentile(0.9):0.00} p99_ms={Begin.Percentile(0.99):0.00} max_ms={Begin.Percentile(1):0.00} " +
        $"complete_p99_ms={Complete.Percentile(0.99):0.00} ")
        + string.Join(' ', CoresUsed.Select(c => string.Create(CultureInfo.InvariantCulture, $"cpu_{c.Key}={c.Value:0.000}")));
}

/// <summary>
/// The mint load generator: <c>concurrency</c> workers, each a closed loop of BeginTask (a new
/// task_id every time, so every call writes a new lease) then CompleteTask on the lease it got,
/// spread over <c>connections</c> multiplexed HTTP/2 connections. A call counts as OK only with
/// grpc-status 0 and a well-formed answer; a failed BeginTask is counted and its loop goes on.
/// Latency is BeginTask's (the mint). After a warm-up, one window is measured, and over exactly
/// that window the CPU time of this process and of the watched processes (broker, Redis) is read
/// from /proc, so the report shows whether the load client could be the bottleneck.
/// In <c>fixed</c> mode every worker replays one task_id (no CompleteTask): the same request h2load
/// sends, to compare the two load generators.
/// </summary>
internal sealed class MintLoadClient(Uri target, string credential, TextWriter log)
{
    private const int Warmup = 0;
    private const int Measuring = 1;
    private const int Done = 2;
    private readonly Uri _beginTask = new(target, MintCalls.BeginTaskPath);
    private readonly Uri _completeTask = new(target, MintCalls.CompleteTaskPath);
    private int _phase;

    public async Task<LoadResult> RunAsync(
        string mode, int concurrency, int connections, TimeSpan warmup, TimeSpan window, IReadOnlyDictionary<string, int> watched, CancellationToken cancellationToken)
    {
        var clients = Enumerable.Range(0, connections).Select(_ => CreateHttpClient()).ToArray();
        var authorization = "Bearer " + credential;
        var run = Guid.NewGuid().ToString("N")[..8];
        var workers = Enumerable.Range(0, concurrency)
            .Select(i => Task.Run(() => WorkAsync(mode, clients[i % connections], authorization, $"{run}-{i}", cancellationToken), cancellationToken))
            .ToArray();

        await Task.Delay(warmup, cancellationToken);
        var before = Snapshot(watched);
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref _phase, Measuring);
        await Task.Delay(window, cancellationToken);
        Volatile.Write(ref _phase, Done);
        var seconds = clock.Elapsed.TotalSeconds;
        var after = Snapshot(watched);
        var results = await Task.WhenAll(workers);
        foreach (var client in clients)
        {
            client.Dispose();
        }

        var begin = new LatencySamples();
        var complete = new LatencySamples();
        var failures = new List<string>();
        foreach (var worker in results)
        {
            begin.AddRange(worker.Begin);
            complete.AddRange(worker.Complete);
            failures.AddRange(worker.Failures.Where(f => !failures.Contains(f)).Take(Math.Max(0, 5 - failures.Count)));
        }

        var cores = after.Where(a => before.ContainsKey(a.Key)).ToDictionary(a => a.Key, a => (a.Value - before[a.Key]) / seconds);
        var result = new LoadResult(mode, concurrency, connections, seconds,
            results.Sum(r => r.BeginOk), results.Sum(r => r.BeginFailed), results.Sum(r => r.CompleteOk), results.Sum(r => r.CompleteFailed),
            begin, complete, cores, failures);
        foreach (var failure in failures)
        {
            log.WriteLine($"  failure: {failure}");
        }

        return result;
    }

    private async Task<WorkerResult> WorkAsync(string mode, HttpClient http, string authorization, string prefix, CancellationToken cancellationToken)
    {
        var result = new WorkerResult();
        for (var sequence = 0; Volatile.Read(ref _phase) != Done; sequence++)
        {
            var taskId = mode == "fixed" ? "bench-fixed-task" : $"{prefix}-{sequence}";
            var counted = Volatile.Read(ref _phase) == Measuring;
            var started = Stopwatch.GetTimestamp();
            var begun = await MintCalls.BeginTaskAsync(http, _beginTask, authorization, taskId, cancellationToken);
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            counted &= Volatile.Read(ref _phase) == Measuring;
            if (counted)
            {
                result.Record(begun, elapsed, result.Begin, ref result.BeginOk, ref result.BeginFailed);
            }

            if (mode == "fixed" || !begun.Ok)
            {
                continue;
            }

            counted = Volatile.Read(ref _phase) == Measuring;
            started = Stopwatch.GetTimestamp();
            var completed = await MintCalls.CompleteTaskAsync(http, _completeTask, authorization, begun.LeaseId!, cancellationToken);
            elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (counted && Volatile.Read(ref _phase) == Measuring)
            {
                result.Record(completed, elapsed, result.Complete, ref result.CompleteOk, ref result.CompleteFailed);
            }
        }

        return result;
    }

    /// <summary>
    /// One HTTP/2 connection pool for <see cref="MintCalls"/>' raw gRPC requests (prior-knowledge h2c
    /// for http://, ALPN h2 for https://). Lean on purpose, like MintCalls: the load generator is not
    /// a Grpc.Net.Client channel, so its own cost stays far below the broker's.
    /// </summary>
    internal static HttpClient CreateHttpClient() => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static Dictionary<string, double> Snapshot(IReadOnlyDictionary<string, int> watched)
    {
        var snapshot = new Dictionary<string, double>
        {
            ["loadclient"] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
        };
        foreach (var (name, pid) in watched)
        {
            if (ProcessCpu.Split(pid) is { } split)
            {
                snapshot[name] = split.User + split.System;
                snapshot[name + "_kernel"] = split.System;
            }
        }

        return snapshot;
    }

    private sealed class WorkerResult
    {
        public readonly LatencySamples Begin = new();
        public readonly LatencySamples Complete = new();
        public readonly List<string> Failures = [];
        public long BeginOk;
        public long BeginFailed;
        public long CompleteOk;
        public long CompleteFailed;

        public void Record(CallOutcome outcome, double milliseconds, LatencySamples samples, ref long ok, ref long failed)
        {
            if (outcome.Ok)
            {
                ok++;
                samples.Add(milliseconds);
            }
            else
            {
                failed++;
                if (Failures.Count < 5 && !Failures.Contains(outcome.Failure!))
                {
                    Failures.Add(outcome.Failure!);
                }
            }
        }
    }
}
