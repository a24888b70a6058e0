using System.Diagnostics;
using System.Globalization;
using System.Text;
using CredBroker.Core.Agents;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Validation;

namespace CredBroker.Bench;

/// <summary>
/// Offline validation speed, side by side in one run: the library's full validation of a real
/// broker token, a bare ES256 verify in .NET, and OpenSSL's own ECDSA P-256 verify rate.
/// </summary>
internal static class ValidationBenchmarks
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(2);
    private const int Rounds = 5;

    public static async Task<string> RunAsync(TextWriter log)
    {
        using var key = SigningKey.Generate();
        var issuer = "https://broker.example";
        var token = new TokenMinter(new StaticSigningKeys([key]), issuer, TimeProvider.System).Mint(Lease(), Agent(), ["demo:read"], "demo-api").AccessToken;
        var jwks = Jwks.Write([key]);
        var cache = new JwksCache(_ => Task.FromResult(jwks));
        await cache.RefreshAsync();
        var validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = issuer, Audience = "demo-api" }, cache, new DenyList());
        if (!validator.Validate(token, DateTimeOffset.UtcNow).IsValid)
        {
            throw new InvalidOperationException("the benchmark token does not validate");
        }

        var parts = token.Split('.');
        var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        var signature = Convert.FromBase64String(Pad(parts[2].Replace('-', '+').Replace('_', '/')));

        // Interleaved rounds, medians: the machine is shared and its speed drifts over seconds.
        var rounds = new List<(double Library, double DotNet, double? OpenSsl)>();
        for (var round = 0; round < Rounds; round++)
        {
            rounds.Add((Rate(() => validator.Validate(token, DateTimeOffset.UtcNow)), Rate(() => key.Verify(signed, signature)), OpenSslVerifyRate()));
        }

        var library = Median(rounds.Select(r => r.Library));
        var dotnet = Median(rounds.Select(r => r.DotNet));
        var openssl = rounds.All(r => r.OpenSsl is not null) ? Median(rounds.Select(r => r.OpenSsl!.Value)) : (double?)null;
        log.WriteLine($"validation: library {library:0}/s, .NET ES256 verify {dotnet:0}/s, openssl {openssl?.ToString("0", CultureInfo.InvariantCulture) ?? "n/a"}/s");

        var report = new StringBuilder();
        report.AppendLine("## Offline validation (CredBroker.Validation)").AppendLine()
            .AppendLine("`dotnet run -c Release --project bench/CredBroker.Bench -- validation --write docs/benchmarks.md`").AppendLine()
            .AppendLine($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, one thread; medians of {Rounds} interleaved rounds of {Duration.TotalSeconds:0} s each, in one run.").AppendLine()
            .AppendLine("| what | per second | vs. OpenSSL verify |").AppendLine("|---|---:|---:|")
            .AppendLine(CultureInfo.InvariantCulture, $"| `AccessTokenValidator.Validate` of a broker token (parse, every check, ES256 verify, deny list) | **{library:0}** | {Ratio(library, openssl)} |")
            .AppendLine(CultureInfo.InvariantCulture, $"| bare ES256 verify in .NET (same key and token) | {dotnet:0} | {Ratio(dotnet, openssl)} |")
            .AppendLine(CultureInfo.InvariantCulture, $"| `openssl speed -seconds {Duration.TotalSeconds:0} ecdsap256` verify | {openssl?.ToString("0", CultureInfo.InvariantCulture) ?? "n/a"} | 1.00× |").AppendLine()
            .AppendLine($"Target ≥ 70 % of OpenSSL's raw verify rate: **{(openssl is { } o && library >= 0.7 * o ? "met" : "missed")}** in this run.").AppendLine();
        return report.ToString();
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    private static double Rate(Func<object> action)
    {
        for (var i = 0; i < 200; i++)
        {
            action();
        }

        var count = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Duration)
        {
            action();
            count++;
        }

        return count / watch.Elapsed.TotalSeconds;
    }

    private static double? OpenSslVerifyRate()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("openssl", $"speed -seconds {Duration.TotalSeconds:0} ecdsap256")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var line = output.Split('\n').FirstOrDefault(l => l.Contains("ecdsa (nistp256)", StringComparison.Ordinal));
            var fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 0 } ? double.Parse(fields[^1], CultureInfo.InvariantCulture) : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string Ratio(double rate, double? reference) =>
        reference is { } r ? (rate / r).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "n/a";

    private static string Pad(string base64) => base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');

    private static Lease Lease()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        return new Lease
        {
            LeaseId = LeaseIds.For("bench-agent", "bench-task"), AgentId = "bench-agent", TaskId = "bench-task", Owner = "owner@example.com",
            Purpose = "benchmark", Audience = "demo-api", Scopes = ["demo:read"], State = LeaseState.Active,
            CreatedAt = now, Deadline = now.AddMinutes(10), MaxDeadline = now.AddHours(1),
        };
    }

    private static AgentDefinition Agent() => new()
    {
        Id = "bench-agent", Owner = "owner@example.com", Purpose = "benchmark", Audiences = ["demo-api"],
        AllowedScopes = new HashSet<string> { "demo:read" },
    };
}
