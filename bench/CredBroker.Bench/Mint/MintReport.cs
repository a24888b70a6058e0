using System.Globalization;
using System.Text;

namespace CredBroker.Bench.Mint;

/// <summary>
/// Turns the lines bench/run.sh collected in one run (OPENSSL, REDIS, LOAD, H2LOAD, PEER, INFO) into
/// the side-by-side table, the ratios against the issue's targets, and the one RESULT line.
/// </summary>
internal sealed class MintReport
{
    public const int RatioConcurrency = 16;
    private readonly List<Dictionary<string, string>> _lines = [];
    private readonly List<(string Name, string Text)> _info = [];

    public static MintReport Parse(IEnumerable<string> lines)
    {
        var report = new MintReport();
        foreach (var line in lines)
        {
            if (line.StartsWith("INFO ", StringComparison.Ordinal))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                report._info.Add((line[5..colon].Trim(), line[(colon + 1)..].Trim()));
                continue;
            }

            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0)
            {
                continue;
            }

            var fields = new Dictionary<string, string>(StringComparer.Ordinal) { ["kind"] = parts[0] };
            foreach (var part in parts.Skip(1))
            {
                var eq = part.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    fields[part[..eq]] = part[(eq + 1)..];
                }
            }

            report._lines.Add(fields);
        }

        return report;
    }

    private Dictionary<string, string>? Find(string kind, params (string Key, string Value)[] match) =>
        _lines.LastOrDefault(l => l["kind"] == kind && match.All(m => l.TryGetValue(m.Key, out var v) && v == m.Value));

    private static double Number(Dictionary<string, string>? line, string key) =>
        line is not null && line.TryGetValue(key, out var text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : double.NaN;

    private string Info(string name) => _info.LastOrDefault(i => i.Name == name).Text ?? "?";

    public IReadOnlyList<int> Levels => _lines.Where(l => l["kind"] == "LOAD" && l.GetValueOrDefault("mode") == "mint")
        .Select(l => int.Parse(l["concurrency"], CultureInfo.InvariantCulture)).Where(c => c > 0).Distinct().Order().ToList();

    public long Failures => (long)_lines.Where(l => l["kind"] == "LOAD").Sum(l => Number(l, "begin_failed") + Number(l, "complete_failed"))
        + (long)_lines.Where(l => l["kind"] == "PEER").Sum(l => Number(l, "non2xx") + Number(l, "errors"));

    public (double MintRps, double MintP99, double PeerRps, double PeerP99, double BrokerCores, double SignPerCore, double SetRps) Anchors()
    {
        var c = RatioConcurrency.ToString(CultureInfo.InvariantCulture);
        var mint = Find("LOAD", ("mode", "mint"), ("concurrency", c));
        var peer = Find("PEER", ("concurrency", c));
        return (Number(mint, "rps"), Number(mint, "p99_ms"), Number(peer, "rps"), Number(peer, "p99_ms"), Number(mint, "cpu_broker"), Number(Find("OPENSSL"), "sign_1"),
            SetRps(RatioConcurrency, "always"));
    }

    /// <summary>redis-benchmark SET/s on the broker's Redis at <paramref name="concurrency"/> clients with that fsync setting (NaN when not measured).</summary>
    private double SetRps(int concurrency, string fsync) =>
        Number(Find("REDISSET", ("concurrency", concurrency.ToString(CultureInfo.InvariantCulture)), ("fsync", fsync)), "rps");

    /// <summary>The idle broker's CPU (cores), measured after the load.</summary>
    private double IdleCores => Number(Find("LOAD", ("concurrency", "0")), "cpu_broker");

    public string ResultLine()
    {
        var a = Anchors();
        var efficiency = a.MintRps / a.BrokerCores / a.SignPerCore;
        return string.Create(CultureInfo.InvariantCulture,
            $"RESULT mint_rps={a.MintRps:0} mint_p99_ms={a.MintP99:0.00} peer_rps={a.PeerRps:0} peer_p99_ms={a.PeerP99:0.00} " +
            $"broker_cpu_cores={a.BrokerCores:0.00} openssl_sign_per_core={a.SignPerCore:0} mint_vs_peer={a.MintRps / a.PeerRps:0.00} " +
            $"p99_vs_peer={a.MintP99 / a.PeerP99:0.00} sign_efficiency={efficiency:0.00} redis_set_rps={a.SetRps:0} write_efficiency={a.MintRps / a.SetRps:0.00} " +
            $"idle_cores={IdleCores:0.000}");
    }

    /// <summary>
    /// Throughput and p99 against concurrency for CredBroker and the peer, as an SVG (two panels, log-scaled
    /// concurrency axis), so the shape reads at a glance. Plain SVG 1.1: no script, no external resources.
    /// </summary>
    public string Svg()
    {
        var levels = Levels;
        var series = new[]
        {
            (Name: "CredBroker mints/s", Color: "#1f6feb", Points: levels.Select(l => (l, Number(Find("LOAD", ("mode", "mint"), ("concurrency", Str(l))), "rps"))).ToList(), Panel: 0),
            (Name: "peer tokens/s", Color: "#d1242f", Points: levels.Select(l => (l, Number(Find("PEER", ("concurrency", Str(l))), "rps"))).ToList(), Panel: 0),
            (Name: "CredBroker p99 (ms)", Color: "#1f6feb", Points: levels.Select(l => (l, Number(Find("LOAD", ("mode", "mint"), ("concurrency", Str(l))), "p99_ms"))).ToList(), Panel: 1),
            (Name: "peer p99 (ms)", Color: "#d1242f", Points: levels.Select(l => (l, Number(Find("PEER", ("concurrency", Str(l))), "p99_ms"))).ToList(), Panel: 1),
        };
        const int width = 930, height = 360, panelWidth = 380, top = 40, plotHeight = 250;
        var svg = new StringBuilder()
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"))
            .AppendLine("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        var titles = new[] { "Throughput (per second) vs concurrency", "p99 latency (ms) vs concurrency" };
        var minLog = Math.Log2(Math.Max(1, levels.Count > 0 ? levels.Min() : 1));
        var maxLog = Math.Log2(Math.Max(2, levels.Count > 0 ? levels.Max() : 2));
        for (var panel = 0; panel < 2; panel++)
        {
            var left = 60 + (panel * (panelWidth + 70));
            var values = series.Where(s => s.Panel == panel).SelectMany(s => s.Points.Select(p => p.Item2)).Where(v => !double.IsNaN(v)).ToList();
            var max = NiceCeiling(values.Count > 0 ? values.Max() : 1);
            double X(int level) => left + (maxLog > minLog ? (Math.Log2(level) - minLog) / (maxLog - minLog) * panelWidth : panelWidth / 2.0);
            double Y(double value) => top + plotHeight - (value / max * plotHeight);
            svg.AppendLine(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{top - 15}\" font-weight=\"bold\">{titles[panel]}</text>"))
                .AppendLine(string.Create(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{panelWidth}\" height=\"{plotHeight}\" fill=\"none\" stroke=\"#888\"/>"));
            for (var tick = 0; tick <= 4; tick++)
            {
                var value = max * tick / 4;
                svg.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"<line x1=\"{left}\" x2=\"{left + panelWidth}\" y1=\"{Y(value):0.#}\" y2=\"{Y(value):0.#}\" stroke=\"#eee\"/><text x=\"{left - 6}\" y=\"{Y(value) + 4:0.#}\" text-anchor=\"end\">{value:0.##}</text>"));
            }

            foreach (var level in levels)
            {
                svg.AppendLine(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{X(level):0.#}\" y=\"{top + plotHeight + 16}\" text-anchor=\"middle\">{level}</text>"));
            }

            svg.AppendLine(string.Create(CultureInfo.InvariantCulture, $"<text x=\"{left + (panelWidth / 2)}\" y=\"{top + plotHeight + 34}\" text-anchor=\"middle\">concurrent calls (log scale)</text>"));
            var legend = 0;
            foreach (var s in series.Where(s => s.Panel == panel))
            {
                var points = s.Points.Where(p => !double.IsNaN(p.Item2)).Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.l):0.#},{Y(p.Item2):0.#}")).ToList();
                svg.AppendLine($"<polyline fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"2\" points=\"{string.Join(' ', points)}\"/>");
                foreach (var point in points)
                {
                    var xy = point.Split(',');
                    svg.AppendLine($"<circle cx=\"{xy[0]}\" cy=\"{xy[1]}\" r=\"3\" fill=\"{s.Color}\"/>");
                }

                svg.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"<rect x=\"{left + 10}\" y=\"{top + 8 + (legend * 16)}\" width=\"10\" height=\"10\" fill=\"{s.Color}\"/><text x=\"{left + 26}\" y=\"{top + 17 + (legend * 16)}\">{s.Name}</text>"));
                legend++;
            }
        }

        return svg.AppendLine(string.Create(CultureInfo.InvariantCulture, $"<text x=\"60\" y=\"{height - 8}\" fill=\"#555\">bench/run.sh, {Info("date")}: {Info("machine")}</text>"))
            .AppendLine("</svg>").ToString();
    }

    private static string Str(int level) => level.ToString(CultureInfo.InvariantCulture);

    private static double NiceCeiling(double value)
    {
        if (value <= 0 || double.IsNaN(value))
        {
            return 1;
        }

        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        return new[] { 1, 2, 2.5, 5, 10 }.Select(f => f * magnitude).First(v => v >= value);
    }

    /// <summary>One row for the history of runs: when, the command, the RESULT line, and which targets it missed.</summary>
    public string HistoryRow(string command)
    {
        var a = Anchors();
        var missed = Targets().Where(t => !t.Met).Select(t => t.Name).ToList();
        return $"| {Info("date")} | `{command}` | {Info("loadavg_before")} | `{ResultLine()}` | {(missed.Count == 0 ? "none" : string.Join(", ", missed))} |";
    }

    /// <summary>Issue 16's targets at concurrency 16, with this run's value.</summary>
    public IReadOnlyList<(string Name, double Value, string Target, bool Met)> Targets()
    {
        var a = Anchors();
        var efficiency = a.MintRps / a.BrokerCores / a.SignPerCore;
        return
        [
            ("mint_vs_peer", a.MintRps / a.PeerRps, "≥ 1", a.MintRps / a.PeerRps >= 1),
            ("p99_vs_peer", a.MintP99 / a.PeerP99, "≤ 1.5", a.MintP99 / a.PeerP99 <= 1.5),
            ("sign_efficiency", efficiency, "≥ 0.25", efficiency >= 0.25),
            ("write_efficiency", a.MintRps / a.SetRps, "≥ 0.4", a.MintRps / a.SetRps >= 0.4),
            ("idle_cores", IdleCores, "≤ 0.01", IdleCores <= 0.01),
        ];
    }

    public string Table()
    {
        var table = new StringBuilder()
            .AppendLine("| concurrency | CredBroker mints/s | p50 | p99 | failed | broker cores | Redis cores | load client cores | peer tokens/s | peer p50 | peer p99 | peer non-2xx | peer cores | autocannon cores |")
            .AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var level in Levels)
        {
            var c = level.ToString(CultureInfo.InvariantCulture);
            var mint = Find("LOAD", ("mode", "mint"), ("concurrency", c));
            var peer = Find("PEER", ("concurrency", c));
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {level} | {Number(mint, "rps"):0} | {Number(mint, "p50_ms"):0.00} ms | {Number(mint, "p99_ms"):0.00} ms | {Number(mint, "begin_failed") + Number(mint, "complete_failed"):0} | " +
                $"{Number(mint, "cpu_broker"):0.00} | {Number(mint, "cpu_redis"):0.00} | {Number(mint, "cpu_loadclient"):0.00} | " +
                $"{Number(peer, "rps"):0} | {Number(peer, "p50_ms"):0.00} ms | {Number(peer, "p99_ms"):0.00} ms | {Number(peer, "non2xx") + Number(peer, "errors"):0} | " +
                $"{Number(peer, "cpu_peer"):0.00} | {Number(peer, "cpu_autocannon"):0.00} |"));
        }

        var everysec = Find("LOAD", ("mode", "mint-everysec"));
        if (everysec is not null)
        {
            table.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Number(everysec, "concurrency"):0}, Redis `appendfsync everysec` (comparison) | {Number(everysec, "rps"):0} | {Number(everysec, "p50_ms"):0.00} ms | {Number(everysec, "p99_ms"):0.00} ms | " +
                $"{Number(everysec, "begin_failed") + Number(everysec, "complete_failed"):0} | {Number(everysec, "cpu_broker"):0.00} | {Number(everysec, "cpu_redis"):0.00} | {Number(everysec, "cpu_loadclient"):0.00} | | | | | | |"));
        }

        return table.ToString();
    }

    public string Markdown(string command)
    {
        var a = Anchors();
        var mintVsPeer = a.MintRps / a.PeerRps;
        var p99VsPeer = a.MintP99 / a.PeerP99;
        var efficiency = a.MintRps / a.BrokerCores / a.SignPerCore;
        var openssl = Find("OPENSSL");
        var redis = Find("REDIS");
        var fixedLoad = Find("LOAD", ("mode", "fixed"));
        var h2load = Find("H2LOAD");
        string Met(bool met) => met ? "met" : "**missed**";
        var text = new StringBuilder()
            .AppendLine("## Minting side by side: CredBroker, a peer token server, and the signing limit").AppendLine()
            .AppendLine($"`{command}`").AppendLine()
            .AppendLine($"Run {Info("date")} on {Info("machine")}; load average {Info("loadavg_before")} before, {Info("loadavg_after")} after "
                + "(the machine is shared with other sessions building code). Every figure below comes from this one run, on loopback.").AppendLine()
            .AppendLine($"Versions: {Info("versions")}.").AppendLine()
            .AppendLine("CredBroker: production mode (Redis store with `appendonly yes`, `appendfsync always`; workload-JWT agent authentication; "
                + "a PEM signing key), one process. Each mint is `BeginTask` with a new `task_id` (policy, lease written to Redis, ES256 token), "
                + "followed on the same worker by `CompleteTask`, so open leases stay bounded. Latency is BeginTask's; a call counts only with "
                + "grpc-status 0 and a well-formed answer. Peer: node `oidc-provider` 9.x, `client_credentials`, ES256 JWT access tokens "
                + "(resource indicators), driven by autocannon with the same number of connections; it stores nothing per token.").AppendLine()
            .Append(Table()).AppendLine()
            .AppendLine("![Throughput and p99 against concurrency, CredBroker and the peer](benchmarks-mint.svg)").AppendLine()
            .AppendLine($"| ratio at concurrency {RatioConcurrency} | this run | target | |").AppendLine("|---|---:|---:|---|")
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `mint_vs_peer` (mints/s ÷ peer tokens/s) | **{mintVsPeer:0.00}** | ≥ 1 | {Met(mintVsPeer >= 1)} |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `p99_vs_peer` (p99 ÷ peer p99) | **{p99VsPeer:0.00}** | ≤ 1.5 | {Met(p99VsPeer <= 1.5)} |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| `sign_efficiency` (mints/s per broker core ÷ openssl signs/s per core) | **{efficiency:0.00}** ({a.MintRps / a.BrokerCores:0} mints per broker core-second) | ≥ 0.25 | {Met(efficiency >= 0.25)} |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| `write_efficiency` (mints/s ÷ redis-benchmark SET/s, {RatioConcurrency} clients, AOF always) | **{a.MintRps / a.SetRps:0.00}** ({a.SetRps:0} SET/s) | ≥ 0.4 | {Met(a.MintRps / a.SetRps >= 0.4)} |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| idle broker CPU (cores) | **{IdleCores:0.000}** | ≤ 0.01 | {Met(IdleCores <= 0.01)} |"))
            .AppendLine()
            .AppendLine("The durable-write limit (redis-benchmark SET on the same Redis, same fsync setting) at each concurrency: "
                + string.Join(", ", Levels.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l}: {SetRps(l, "always"):0}/s")))
                + string.Create(CultureInfo.InvariantCulture, $"; with `appendfsync everysec` at 16 clients: {SetRps(16, "everysec"):0}/s.")).AppendLine()
            .AppendLine("Limits measured in the same run:").AppendLine()
            .AppendLine("| limit | rate |").AppendLine("|---|---:|")
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `openssl speed ecdsap256` sign, one core | {Number(openssl, "sign_1"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `openssl speed ecdsap256` verify, one core | {Number(openssl, "verify_1"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `openssl speed -multi {Number(openssl, "cores"):0} ecdsap256` sign, all cores | {Number(openssl, "sign_multi"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `openssl speed -multi {Number(openssl, "cores"):0} ecdsap256` verify, all cores | {Number(openssl, "verify_multi"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `redis-benchmark` SET (16 clients, no pipelining; the broker's Redis, AOF always) | {Number(redis, "set"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `redis-benchmark` GET (16 clients, no pipelining; the broker's Redis, AOF always) | {Number(redis, "get"):0}/s |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture, $"| `redis-benchmark` EVAL of a one-key HSET script (16 clients) | {Number(redis, "eval"):0}/s |"))
            .AppendLine()
            .AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Redis over all mint levels (`INFO commandstats`): {Number(Find("REDISSTATS"), "evalsha_calls"):0} script calls (EVALSHA), "
                + $"{Number(Find("REDISSTATS"), "evalsha_usec_per_call"):0.0} µs of Redis time each (target ≤ 25 µs). The idle broker (no calls, {Number(Find("LOAD", ("concurrency", "0")), "seconds"):0} s after the load) "
                + $"used {Number(Find("LOAD", ("concurrency", "0")), "cpu_broker"):0.000} cores (sweeper, timers, runtime)."))
            .AppendLine()
            .AppendLine("Is the load client the bottleneck? The same request (one fixed `task_id`, so every call is an idempotent replay; no CompleteTask), "
                + $"{Number(fixedLoad, "concurrency"):0} concurrent streams over {Number(fixedLoad, "connections"):0} connections, from both generators:").AppendLine()
            .AppendLine("| generator | calls/s | mean latency | broker cores | generator cores |").AppendLine("|---|---:|---:|---:|---:|")
            .AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| CredBroker.Bench load client (checks grpc-status) | {Number(fixedLoad, "rps"):0} | {Number(fixedLoad, "mean_ms"):0.00} ms | {Number(fixedLoad, "cpu_broker"):0.00} | {Number(fixedLoad, "cpu_loadclient"):0.00} |"))
            .AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| h2load (counts HTTP 200 only; grpc-status checked on a sample call first) | {Number(h2load, "rps"):0} | {Number(h2load, "mean_ms"):0.00} ms | {Number(h2load, "cpu_broker"):0.00} | {Number(h2load, "cpu_h2load"):0.00} |"))
            .AppendLine()
            .AppendLine($"`{ResultLine()}`");
        return text.ToString();
    }
}
