using System.Diagnostics;
using System.Text;

namespace CredBroker.Mcp.Tests;

/// <summary>A child process (the dev broker, the sample MCP server, node) with its output captured and killed on dispose.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly StringBuilder _output = new();
    private readonly List<string> _lines = [];
    private bool _disposed;

    private ChildProcess(Process process, string name)
    {
        Process = process;
        Name = name;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }

    public string Name { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static ChildProcess Start(string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string? workingDirectory = null, bool stdin = false)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin };
        if (workingDirectory is not null)
        {
            start.WorkingDirectory = workingDirectory;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var name = Path.GetFileName(arguments.FirstOrDefault() ?? file);
        return new ChildProcess(Process.Start(start)!, name);
    }

    /// <summary>Waits until a captured line satisfies <paramref name="match"/> (returns it), failing when the process exits first or 60 s pass.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            lock (_output)
            {
                if (_lines.FirstOrDefault(match) is { } line)
                {
                    return line;
                }
            }

            if (Process.HasExited)
            {
                Process.WaitForExit(); // drains the redirected output
                lock (_output)
                {
                    return _lines.FirstOrDefault(match) ?? throw new AssertionException($"{Name} exited ({Process.ExitCode}) without the expected line: {_output}");
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new AssertionException($"{Name} did not print the expected line in 60 s: {Output}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Waits for the process to end (at most 120 s) and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await Process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new AssertionException($"{Name} did not finish in 120 s: {Output}");
        }

        Process.WaitForExit(); // drains the redirected output
        return Process.ExitCode;
    }

    /// <summary>Polls <paramref name="url"/> until it answers 2xx, failing when the process exits or 60 s pass.</summary>
    public async Task WaitReadyAsync(string url)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.That(Process.HasExited, Is.False, $"{Name} exited during start: {Output}");
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{Name} was not ready in 60 s: {Output}");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!Process.HasExited)
        {
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
        }

        Process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            _lines.Add(line);
        }
    }
}
