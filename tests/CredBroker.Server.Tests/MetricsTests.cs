using System.Globalization;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>/metrics scraped and parsed as Prometheus text while real calls happen; /healthz and /readyz.</summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker();
        await _broker.StartAsync(_redis.ConnectionString);
        _http = new HttpClient { BaseAddress = _broker.HttpAddress };
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _http.Dispose();
        await _broker.DisposeAsync();
        _redis.Dispose();
    }

    /// <summary>Parses the text exposition format: every sample as "name{labels}" → value; checks HELP/TYPE precede samples.</summary>
    private async Task<Dictionary<string, double>> ScrapeAsync()
    {
        var response = await _http.GetAsync("/metrics");
        Assert.That(response.Content.Headers.ContentType?.ToString(), Does.StartWith("text/plain; version=0.0.4"));
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        var typed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.That(parts[3], Is.AnyOf("counter", "gauge", "histogram"), line);
                typed.Add(parts[2]);
                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            var split = line.LastIndexOf(' ');
            var series = line[..split];
            var name = series.Split('{')[0];
            Assert.That(typed.Contains(name) || typed.Contains(System.Text.RegularExpressions.Regex.Replace(name, "_(bucket|sum|count)$", "")), Is.True, "TYPE before " + line);
            samples.Add(Canonical(series), double.Parse(line[(split + 1)..].Replace("+Inf", "Infinity", StringComparison.Ordinal), CultureInfo.InvariantCulture));
        }

        return samples;
    }

    private static double Value(Dictionary<string, double> samples, string series) => samples.GetValueOrDefault(Canonical(series));

    /// <summary>One spelling per series: labels sorted by name, <c>le</c> last, no empty braces (exporters differ in both).</summary>
    private static string Canonical(string series)
    {
        var open = series.IndexOf('{');
        if (open < 0 || series.EndsWith("{}", StringComparison.Ordinal))
        {
            return open < 0 ? series : series[..open];
        }

        var labels = System.Text.RegularExpressions.Regex.Matches(series[(open + 1)..^1], "([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"")
            .Select(m => (Name: m.Groups[1].Value, Text: m.Value))
            .OrderBy(l => l.Name == "le" ? 1 : 0).ThenBy(l => l.Name, StringComparer.Ordinal);
        return series[..(open + 1)] + string.Join(",", labels.Select(l => l.Text)) + "}";
    }

    [Test]
    public async Task Counters_MoveAsCallsHappen()
    {
        using var client = _broker.ClientFor(Triage);
        const string begin = "credbroker_grpc_requests_total{method=\"/credbroker.v1.AgentBroker/BeginTask\",code=\"OK\"}";
        const string denied = "credbroker_grpc_requests_total{method=\"/credbroker.v1.AgentBroker/BeginTask\",code=\"PermissionDenied\"}";
        const string issued = "credbroker_tokens_issued_total{operation=\"begin_task\"}";
        const string deniedRule = "credbroker_tokens_denied_total{reason=\"agent.disallowed_scope\"}";
        const string duration = "credbroker_grpc_request_duration_seconds_count{method=\"/credbroker.v1.AgentBroker/BeginTask\"}";
        const string completed = "credbroker_leases_ended_total{state=\"completed\"}";
        var before = await ScrapeAsync();

        var lease = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
        await client.BeginTaskAsync(new BeginTaskRequest { TaskId = Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
        Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = Guid.NewGuid().ToString("N"), Scopes = { "tickets:delete" } }));
        await client.CompleteTaskAsync(lease.LeaseId);
        var after = await ScrapeAsync();

        Assert.That(Value(after, begin) - Value(before, begin), Is.EqualTo(2));
        Assert.That(Value(after, denied) - Value(before, denied), Is.EqualTo(1));
        Assert.That(Value(after, issued) - Value(before, issued), Is.EqualTo(2));
        Assert.That(Value(after, deniedRule) - Value(before, deniedRule), Is.EqualTo(1));
        Assert.That(Value(after, duration) - Value(before, duration), Is.EqualTo(3));
        Assert.That(Value(after, completed) - Value(before, completed), Is.EqualTo(1));
        // The open-lease gauge is refreshed in the background (a scrape costs no Redis round trip): wait for it.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (Value(after, "credbroker_active_leases") < 1 && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(200);
            after = await ScrapeAsync();
        }

        Assert.That(Value(after, "credbroker_active_leases"), Is.GreaterThanOrEqualTo(1));
        Assert.That(after.Keys, Has.Some.StartsWith("credbroker_redis_latency_seconds_bucket{operation=\"open\",le="));
        Assert.That(after.Keys, Has.Some.StartsWith("credbroker_audit_append_duration_seconds_bucket{le="));
        Assert.That(Value(after, "credbroker_audit_records_total{type=\"token.minted\"}"), Is.GreaterThanOrEqualTo(2));
        Assert.That(after.Keys, Has.Some.StartsWith("credbroker_sweeps_total{result=\"ok\"}"));
    }

    [Test]
    public async Task Histogram_BucketsAreCumulativeAndEndInTheCount()
    {
        using var client = _broker.ClientFor(Triage);
        await client.BeginTaskAsync(new BeginTaskRequest { TaskId = Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });

        var samples = await ScrapeAsync();
        var buckets = samples.Where(s => s.Key.StartsWith("credbroker_grpc_request_duration_seconds_bucket{method=\"/credbroker.v1.AgentBroker/BeginTask\"", StringComparison.Ordinal))
            .Select(s => s.Value).ToList();

        Assert.That(buckets, Is.Ordered);
        Assert.That(buckets[^1], Is.EqualTo(samples["credbroker_grpc_request_duration_seconds_count{method=\"/credbroker.v1.AgentBroker/BeginTask\"}"]));
    }

    [Test]
    public async Task Healthz_IsProcessLiveness_ReadyzChecksStoreAuditKeyAndPolicy()
    {
        var health = await _http.GetAsync("/healthz");
        var ready = await _http.GetAsync("/readyz");
        using var json = System.Text.Json.JsonDocument.Parse(await ready.Content.ReadAsStringAsync());

        Assert.That((int)health.StatusCode, Is.EqualTo(200));
        Assert.That((int)ready.StatusCode, Is.EqualTo(200));
        Assert.That(json.RootElement.GetProperty("ready").GetBoolean(), Is.True);
        Assert.That(json.RootElement.GetProperty("checks").EnumerateObject().Select(p => (p.Name, p.Value.GetString())),
            Is.EquivalentTo(new[] { ("lease_store", "ok"), ("audit_log", "ok"), ("signing_key", "ok"), ("policy", "ok") }));
    }
}
