using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CredBroker.Testing.Grpc;

namespace CredBroker.Interop.Tests;

/// <summary>
/// The gRPC interop matrix: clients we did not write — Debian's python3-grpcio and npm's
/// @grpc/grpc-js — run the same cases (tests/interop/python/grpc_matrix.py,
/// tests/interop/node/grpc_matrix.js) against <see cref="InteropServer"/> over h2c, TLS and mTLS.
/// Each script prints one JSON line per case; every expected case must be present and ok.
/// </summary>
[TestFixture]
[NonParallelizable] // streaming_client_cancel reads a server-wide counter: one client at a time
public sealed class InteropMatrixTests
{
    /// <summary>The cases both scripts must report, in their order of execution.</summary>
    public static readonly IReadOnlyList<string> ExpectedCases =
    [
        "unary_ok",
        "unary_error_with_details",
        "metadata_roundtrip",
        "server_streaming",
        "streaming_error_midway",
        "streaming_client_cancel",
        "deadline_client",
        "deadline_server",
        "gzip_request",
        "gzip_response",
        "oversized_request",
        "unknown_method",
        "unknown_service",
        "health_check",
        "health_watch",
        "reflection_v1_list",
        "reflection_v1alpha_describe",
        "tls_ok",
        "mtls_ok",
        "mtls_no_client_cert",
        "mtls_rogue_cert",
    ];

    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(90);

    private InteropServer _server = null!;
    private string _root = null!;

    [OneTimeSetUp]
    public async Task StartServerAsync()
    {
        _root = FindRoot();
        _server = await InteropServer.StartAsync();
    }

    [OneTimeTearDown]
    public async Task StopServerAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Test]
    public async Task Python_GrpcIo_PassesTheMatrix()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python))
        {
            Assert.Fail("Debian's /usr/bin/python3 (with python3-grpcio) is missing: run tests/run.sh");
        }

        var run = await RunAsync(python, Path.Combine(_root, "tests", "interop", "python", "grpc_matrix.py"));
        AssertEveryCasePassed("python3-grpcio", run);
    }

    [Test]
    public async Task Node_GrpcJs_PassesTheMatrix()
    {
        var nodeDir = Path.Combine(_root, "tests", "interop", "node");
        if (!Directory.Exists(Path.Combine(nodeDir, "node_modules", "@grpc", "grpc-js")))
        {
            Assert.Fail($"{Path.Combine(nodeDir, "node_modules")} is missing or incomplete: run `npm ci` in tests/interop/node (tests/run.sh does this).");
        }

        var run = await RunAsync("node", Path.Combine(nodeDir, "grpc_matrix.js"));
        AssertEveryCasePassed("@grpc/grpc-js", run);
    }

    private static void AssertEveryCasePassed(string client, ScriptRun run)
    {
        var reported = new Dictionary<string, (bool Ok, string Detail)>(StringComparer.Ordinal);
        var unparsed = new List<string>();
        foreach (var line in run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                var json = JsonDocument.Parse(line).RootElement;
                var ok = json.GetProperty("ok").ValueKind == JsonValueKind.True;
                reported[json.GetProperty("case").GetString()!] = (ok, json.TryGetProperty("detail", out var d) ? d.ToString() : "");
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                unparsed.Add(line);
            }
        }

        var failures = new List<string>();
        foreach (var name in ExpectedCases)
        {
            if (!reported.TryGetValue(name, out var result))
            {
                failures.Add($"{name}: missing from the output");
            }
            else if (!result.Ok)
            {
                failures.Add($"{name}: {result.Detail}");
            }
        }

        var message = new StringBuilder()
            .AppendLine($"{client}: {failures.Count} of {ExpectedCases.Count} cases failed (exit code {run.ExitCode}, {run.Elapsed.TotalSeconds:0.0} s):")
            .AppendJoin(Environment.NewLine, failures.Select(f => "  " + f)).AppendLine();
        var passed = ExpectedCases.Where(n => reported.TryGetValue(n, out var r) && r.Ok).ToList();
        message.AppendLine($"passed: {string.Join(", ", passed)}");
        if (unparsed.Count > 0)
        {
            message.AppendLine("unparsed stdout:").AppendJoin(Environment.NewLine, unparsed).AppendLine();
        }

        if (run.Stderr.Length > 0)
        {
            message.AppendLine("stderr:").AppendLine(run.Stderr);
        }

        Assert.That(failures, Is.Empty, message.ToString());
        Assert.That(run.ExitCode, Is.Zero, message.ToString());
        TestContext.Out.WriteLine($"{client}: all {ExpectedCases.Count} cases passed in {run.Elapsed.TotalSeconds:0.0} s");
    }

    private async Task<ScriptRun> RunAsync(string fileName, string script)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(script)!,
        };
        start.ArgumentList.Add(script);
        foreach (var (key, value) in _server.ClientEnvironment())
        {
            start.Environment[key] = value;
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"{Path.GetFileName(script)} did not finish in {ScriptTimeout.TotalSeconds:0} s and was killed.{Environment.NewLine}" +
                        $"stdout:{Environment.NewLine}{await stdout}{Environment.NewLine}stderr:{Environment.NewLine}{await stderr}");
        }

        return new ScriptRun(process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above the test directory.");
    }

    private sealed record ScriptRun(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);
}
