using CredBroker.Bench;

// Usage: dotnet run -c Release --project bench/CredBroker.Bench -- leases|validation|propagation|policy [--leases 100000] [--count 1000] [--write docs/benchmarks.md]
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
    default:
        Console.Error.WriteLine($"unknown scenario '{scenario}'; scenarios: leases, validation, propagation, policy");
        return 2;
}

static int Option(List<string> arguments, string name, int fallback) =>
    arguments.IndexOf(name) is >= 0 and var i && i + 1 < arguments.Count && int.TryParse(arguments[i + 1], out var value) ? value : fallback;
