using System.Diagnostics;

namespace CredBroker.Cli.Tests;

/// <summary>The built <c>credbroker</c> binary as a child process, exactly as an operator runs it.</summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly System.Text.StringBuilder _stderr = new();

    private CliProcess(Process process) => _process = process;

    public static string Binary => Path.Combine(AppContext.BaseDirectory, "credbroker.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs to completion (bounded by <paramref name="timeout"/>, default 60 s).</summary>
    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string?> environment, TimeSpan? timeout, params string[] args)
    {
        using var cli = Start(environment, args);
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await cli._process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"credbroker {string.Join(' ', args)} did not exit: {cli.Stderr}");
        }

        return new Result(cli._process.ExitCode, cli.Stdout, cli.Stderr);
    }

    /// <summary>Starts a long-running command (e.g. <c>audit tail -f</c>); read its lines with <see cref="WaitForLineAsync"/>.</summary>
    public static CliProcess Start(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Binary);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Nothing from the test runner's environment leaks in: the test decides address and credential.
        start.Environment.Remove("CREDBROKER_OPERATOR_TOKEN");
        start.Environment.Remove("CREDBROKER_OPERATOR_ADDRESS");
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var cli = new CliProcess(Process.Start(start)!);
        cli._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (cli._lines)
                {
                    cli._lines.Add(e.Data);
                    Monitor.PulseAll(cli._lines);
                }
            }
        };
        cli._process.ErrorDataReceived += (_, e) =>
        {
            lock (cli._stderr)
            {
                cli._stderr.AppendLine(e.Data);
            }
        };
        cli._process.BeginOutputReadLine();
        cli._process.BeginErrorReadLine();
        return cli;
    }

    public string Stdout
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Waits (up to <paramref name="timeout"/>) for a stdout line matching <paramref name="match"/>.</summary>
    public string WaitForLine(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_lines)
        {
            var seen = 0;
            while (true)
            {
                for (; seen < _lines.Count; seen++)
                {
                    if (match(_lines[seen]))
                    {
                        return _lines[seen];
                    }
                }

                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    throw new TimeoutException("no matching line; stdout: " + string.Join('\n', _lines) + "\nstderr: " + Stderr);
                }

                // Woken by each new line (the deadline bounds the wait).
                Monitor.Wait(_lines, left);
            }
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }
}
