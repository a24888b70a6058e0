using System.Diagnostics;
using System.Text;

namespace CredBroker.Testing;

/// <summary>The broker binary as a child process (production mode), so a test can SIGKILL it like a crashed replica.</summary>
public sealed class BrokerProcess : IDisposable
{
    private readonly StringBuilder _output = new();
    private Process _process;
    private string[] _arguments = [];
    private IReadOnlyDictionary<string, string>? _environment;

    private BrokerProcess(Process process, int httpPort, int agentPort)
    {
        _process = process;
        HttpPort = httpPort;
        AgentAddress = new Uri($"http://127.0.0.1:{agentPort}");
    }

    /// <summary>The operator port, when the starter named it.</summary>
    public int OperatorPort { get; private set; }

    public Uri OperatorAddress => new($"http://127.0.0.1:{OperatorPort}");

    /// <summary>A new process with the same arguments, environment and ports (after <see cref="Kill"/>); returns once it is ready.</summary>
    public async Task RestartAsync()
    {
        Kill();
        _process.Dispose();
        _process = Launch(_arguments, _environment);
        Attach(this);
        await WaitReadyAsync(this, disposeOnFailure: false);
    }

    private static Process Launch(string[] arguments, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add(typeof(CredBroker.Server.Hosting.BrokerApp).Assembly.Location);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start)!;
    }

    private static void Attach(BrokerProcess broker)
    {
        var process = broker._process;
        process.OutputDataReceived += (_, e) => broker.Append(e.Data);
        process.ErrorDataReceived += (_, e) => broker.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int HttpPort { get; }

    public int Id => _process.Id;

    /// <summary>
    /// The environment that runs a process with its wall clock <paramref name="offset"/> from the real one
    /// (Debian's libfaketime, LD_PRELOAD; monotonic clocks are left alone so timers behave).
    /// </summary>
    public static IReadOnlyDictionary<string, string> SkewedClock(TimeSpan offset)
    {
        var library = new[] { "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("libfaketime is not installed; run tests/run.sh, which installs faketime with apt-get.");
        var seconds = (long)offset.TotalSeconds;
        return new Dictionary<string, string>
        {
            ["LD_PRELOAD"] = library,
            ["FAKETIME"] = (seconds >= 0 ? "+" : "") + seconds.ToString(System.Globalization.CultureInfo.InvariantCulture) + "s",
            ["FAKETIME_DONT_FAKE_MONOTONIC"] = "1",
            ["FAKETIME_NO_CACHE"] = "1",
            // Under libfaketime the runtime's timed waits misbehave: with the broker's setting (workers block at once,
            // UnfairSemaphoreSpinLimit=0 in its runtimeconfig) idle workers were not woken and every Redis call of the
            // skewed replica timed out. The runtime's default spin lets it run; the clock is what this replica tests.
            ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "70",
            // libfaketime's "monotonic fix" (on by default with glibc) shifts the deadline of pthread_cond_timedwait even on
            // a monotonic clock, so a timed wait shorter than the offset returns at once: through Sentinel, StackExchange.Redis
            // then gave up on every primary discovery ("Sentinel: Failed connecting to configured primary for service") and
            // the skewed replica never became ready (the chaos run's Sentinel topology). Monotonic time is not faked here,
            // so the fix is not needed.
            ["FAKETIME_FORCE_MONOTONIC_FIX"] = "0",
        };
    }

    public Uri AgentAddress { get; }

    /// <param name="environment">More environment variables (e.g. libfaketime's LD_PRELOAD and FAKETIME for a skewed clock).</param>
    public static async Task<BrokerProcess> StartAsync(string[] arguments, int httpPort, int agentPort, IReadOnlyDictionary<string, string>? environment = null, int operatorPort = 0)
    {
        var broker = new BrokerProcess(Launch(arguments, environment), httpPort, agentPort)
        {
            _arguments = arguments,
            _environment = environment,
            OperatorPort = operatorPort,
        };
        Attach(broker);
        await WaitReadyAsync(broker);
        return broker;
    }

    /// <summary>Starts the process and returns at once, ready or not (a test that watches /healthz and /readyz itself).</summary>
    public static BrokerProcess Launch(string[] arguments, int httpPort, int agentPort, IReadOnlyDictionary<string, string>? environment = null, int operatorPort = 0)
    {
        var broker = new BrokerProcess(Launch(arguments, environment), httpPort, agentPort)
        {
            _arguments = arguments,
            _environment = environment,
            OperatorPort = operatorPort,
        };
        Attach(broker);
        return broker;
    }

    private static async Task WaitReadyAsync(BrokerProcess broker, bool disposeOnFailure = true)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{broker.HttpPort}/readyz")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline && !broker._process.HasExited)
            {
            }

            if (broker._process.HasExited || DateTime.UtcNow > deadline)
            {
                if (disposeOnFailure)
                {
                    broker.Dispose();
                }
                else
                {
                    broker.Kill();
                }

                throw new InvalidOperationException("The broker process did not become ready: " + broker.Output);
            }

            await Task.Delay(100);
        }
    }

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

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code once the process has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Waits up to <paramref name="timeout"/> for the process to exit; true if it did.</summary>
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    /// <summary>SIGSTOP (a paused replica: its sweeper and listeners stop, its sockets stay open).</summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal("CONT");

    /// <summary>SIGTERM: a graceful stop.</summary>
    public void Terminate() => Signal("TERM");

    private void Signal(string signal)
    {
        if (_process.HasExited)
        {
            return;
        }

        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {_process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>SIGKILL: no shutdown hooks, in-flight work is lost, exactly like a crashed pod.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
