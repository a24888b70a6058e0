using System.Globalization;
using CredBroker.Bench;
using CredBroker.Bench.Mint;

// Usage: dotnet run -c Release --project bench/CredBroker.Bench -- leases|validation|propagation|ssf-propagation|audit|scripts|hot-agent|policy [--leases 100000] [--count 1000] [--write docs/benchmarks.md]
// The mint comparison (bench/run.sh drives these): mint-setup, mint-load, mint-report.
var arguments = args.ToList();
var scenario = arguments.FirstOrDefault() ?? "leases";
var leaseCount = Option(arguments, "--leases", 100_000);
var write = arguments.IndexOf("--write") is >= 0 and var w && w + 1 < arguments.Count ? arguments[w + 1] : null;

switch (scenario)
{
    case "leases":
        var report = await LeaseBenchmarks.RunAsync(leaseCount, Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "leases", report);
            Console.WriteLine($"wrote the 'leases' section of {write}");
        }

        return 0;
    case "propagation":
        var propagation = await PropagationBenchmarks.RunAsync(Option(arguments, "--count", 1000), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "propagation", propagation);
            Console.WriteLine($"wrote the 'propagation' section of {write}");
        }

        return 0;
    case "ssf-propagation":
        var ssf = await SsfPropagationBenchmarks.RunAsync(Option(arguments, "--count", 1000), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "ssf", ssf);
            Console.WriteLine($"wrote the 'ssf' section of {write}");
        }

        return 0;
    case "policy":
        var policy = PolicyBenchmarks.Run(Option(arguments, "--count", 200_000), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "policy", policy);
            Console.WriteLine($"wrote the 'policy' section of {write}");
        }

        return 0;
    case "validation":
        var validation = await ValidationBenchmarks.RunAsync(Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "validation", validation);
            Console.WriteLine($"wrote the 'validation' section of {write}");
        }

        return 0;
    case "mint-setup":
        MintSetup.Write(Text(arguments, "--dir"), Text(arguments, "--redis"), Option(arguments, "--http", 0), Option(arguments, "--agent", 0), Option(arguments, "--operator", 0), Console.Out);
        return 0;
    case "mint-load":
        var watched = arguments.Select((a, i) => (a, i)).Where(x => x.a == "--watch" && x.i + 1 < arguments.Count)
            .Select(x => arguments[x.i + 1].Split('=')).ToDictionary(p => p[0], p => int.Parse(p[1], CultureInfo.InvariantCulture));
        var concurrency = Option(arguments, "--concurrency", 16);
        var load = await new MintLoadClient(new Uri(Text(arguments, "--target")), File.ReadAllText(Text(arguments, "--credential-file")).Trim(), Console.Error)
            .RunAsync(arguments.IndexOf("--fixed") >= 0 ? "fixed" : "mint", concurrency, Option(arguments, "--connections", Math.Min(concurrency, 4)),
                TimeSpan.FromSeconds(Option(arguments, "--warmup", 2)), TimeSpan.FromSeconds(Option(arguments, "--seconds", 10)), watched, CancellationToken.None);
        Console.WriteLine(arguments.IndexOf("--tag") >= 0 ? load.ToLine().Replace($"mode={load.Mode} ", $"mode={Text(arguments, "--tag")} ", StringComparison.Ordinal) : load.ToLine());
        return load.BeginOk > 0 || concurrency == 0 ? 0 : 1;
    case "mint-report":
        var mint = MintReport.Parse(File.ReadAllLines(Text(arguments, "--results")));
        Console.WriteLine(mint.Table());
        Console.WriteLine(mint.ResultLine());
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "mint", mint.Markdown(Text(arguments, "--command")));
            var svg = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(write))!, "benchmarks-mint.svg");
            File.WriteAllText(svg, mint.Svg());
            Console.WriteLine($"wrote the 'mint' section of {write} and {svg}");
        }

        // Every run's RESULT goes into the history, misses included (also runs without --write).
        var history = arguments.IndexOf("--history") is >= 0 and var h && h + 1 < arguments.Count ? arguments[h + 1] : write;
        if (history is not null)
        {
            BenchmarkReport.AppendRow(history, "mint-runs",
                "| run (UTC) | command | load avg before | RESULT | targets missed |\n|---|---|---|---|---|", mint.HistoryRow(Text(arguments, "--command")));
            Console.WriteLine($"added this run to the 'mint-runs' history in {history}");
        }

        return mint.Failures == 0 ? 0 : 1;
    case "scripts":
        var scripts = await ScriptBenchmarks.RunAsync(Option(arguments, "--count", 2000), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "scripts", scripts);
            Console.WriteLine($"wrote the 'scripts' section of {write}");
        }

        return 0;
    case "write-section":
        // A section of a markdown file from a file's text (bench/durability.sh writes its table into docs/operations.md this way).
        BenchmarkReport.WriteSection(Text(arguments, "--path"), Text(arguments, "--name"), File.ReadAllText(Text(arguments, "--file")));
        return 0;
    case "audit":
        var audit = await AuditBenchmarks.RunAsync(Option(arguments, "--count", 2000), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "audit", audit);
            Console.WriteLine($"wrote the 'audit' section of {write}");
        }

        return 0;
    case "hot-agent":
        var hot = await HotAgentBenchmarks.RunAsync(Option(arguments, "--concurrency", 48), Option(arguments, "--seconds", 3), Option(arguments, "--rounds", 3), Console.Out);
        if (write is not null)
        {
            BenchmarkReport.WriteSection(write, "hot-agent", hot);
            Console.WriteLine($"wrote the 'hot-agent' section of {write}");
        }

        return 0;
    default:
        Console.Error.WriteLine($"unknown scenario '{scenario}'; scenarios: leases, validation, propagation, ssf-propagation, audit, scripts, hot-agent, policy, mint-setup, mint-load, mint-report");
        return 2;
}

static int Option(List<string> arguments, string name, int fallback) =>
    arguments.IndexOf(name) is >= 0 and var i && i + 1 < arguments.Count && int.TryParse(arguments[i + 1], out var value) ? value : fallback;

static string Text(List<string> arguments, string name) =>
    arguments.IndexOf(name) is >= 0 and var i && i + 1 < arguments.Count ? arguments[i + 1] : throw new ArgumentException($"{name} is required");
