using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CredBroker.Testing;

/// <summary>
/// Debian's redis-server on a private loopback port, in its own temp dir. Kill simulates a crash
/// (SIGKILL); Restart brings it back on the same port and dir (with AOF, the data too).
/// </summary>
public sealed class RedisServer : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-redis-").FullName;
    private readonly bool _appendOnly;
    private readonly string _extraArguments;
    private Process? _process;
    private string? _sentinelConfig;

    private RedisServer(bool appendOnly, int port, string extraArguments)
    {
        _appendOnly = appendOnly;
        _extraArguments = extraArguments;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public static RedisServer Start(bool appendOnly = false) => Start(appendOnly, FreePort(), string.Empty);

    /// <summary>A server on <paramref name="port"/> with extra redis-server arguments (e.g. cluster mode).</summary>
    public static RedisServer Start(bool appendOnly, int port, string extraArguments)
    {
        var server = new RedisServer(appendOnly, port, extraArguments);
        server.Restart();
        return server;
    }

    /// <summary>
    /// A Sentinel on <paramref name="port"/>: <paramref name="config"/> gets this server's own directory
    /// and returns the sentinel.conf text (Sentinel rewrites that file, so it lives in the temp dir).
    /// Runs redis-server --sentinel (the same binary as Debian's redis-sentinel), so only redis-server must be installed.
    /// </summary>
    public static RedisServer StartSentinel(int port, Func<string, string> config)
    {
        var server = new RedisServer(appendOnly: false, port, string.Empty);
        server._sentinelConfig = Path.Combine(server._dir, "sentinel.conf");
        File.WriteAllText(server._sentinelConfig, config(server._dir));
        server.Restart();
        return server;
    }

    public void Restart()
    {
        var binary = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not installed; run tests/run.sh, which installs it with apt-get.");
        var args = $"--port {Port} --bind 127.0.0.1 --save \"\" --dir {_dir} --daemonize no --protected-mode yes "
            + (_appendOnly ? "--appendonly yes --appendfsync always" : "--appendonly no") + " " + _extraArguments;
        if (_sentinelConfig is not null)
        {
            args = _sentinelConfig + " --sentinel";
        }
        _process = Process.Start(new ProcessStartInfo(binary, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!Ping())
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"redis-server did not answer PING on port {Port}: {_process.StandardError.ReadToEnd()}");
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>SIGKILL: no shutdown save, like a crash.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    /// <summary>
    /// SIGSTOP: the process stays, its sockets stay open, and nothing answers, like a hung host or a
    /// partition (the hard case for a client: no connection error, only silence).
    /// </summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal("CONT");

    public void Dispose()
    {
        Kill(); // SIGKILL ends a stopped (SIGSTOP) process too
        _process?.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Signal(string signal)
    {
        var process = _process ?? throw new InvalidOperationException("redis-server is not running.");
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {process.Id} failed with exit code {kill.ExitCode}.");
        }
    }

    private bool Ping()
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            var buffer = new byte[16];
            var read = stream.Read(buffer);
            // With requirepass an unauthenticated PING answers -NOAUTH: the server is up all the same.
            return (read >= 5 && buffer[0] == (byte)'+') || (read >= 7 && buffer.AsSpan(0, 7).SequenceEqual("-NOAUTH"u8));
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
