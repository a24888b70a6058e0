using System.Diagnostics;

namespace CredBroker.Deploy.Tests;

/// <summary>Runs the real tools (helm, yamllint, dotnet) as child processes, from the repository root.</summary>
internal static class Tool
{
    public static string Root { get; } = FindRoot();

    /// <summary>helm as installed by tests/tools/install-helm.sh (tests/run.sh runs it when helm is missing).</summary>
    public static string Helm
    {
        get
        {
            var helm = Environment.GetEnvironmentVariable("CREDBROKER_HELM") is { Length: > 0 } fromEnv ? fromEnv : Path.Combine(Root, ".artifacts", "tools", "helm");
            return File.Exists(helm) ? helm : throw new InvalidOperationException($"helm is not at {helm}: run tests/tools/install-helm.sh (tests/run.sh does).");
        }
    }

    public static string Yamllint =>
        new[] { "/usr/bin/yamllint", "/usr/local/bin/yamllint" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("yamllint is not installed: run tests/run.sh (it installs it with apt-get).");

    public static (int Exit, string Stdout, string Stderr) Run(string file, IEnumerable<string> arguments, string? stdin = null, int timeoutSeconds = 120, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory ?? Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }

        if (!process.WaitForExit(timeoutSeconds * 1000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish in {timeoutSeconds} s");
        }

        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above the test directory.");
    }
}
