using CredBroker.Core.Audit;
using CredBroker.Core.Policy;
using CredBroker.Server.Services;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Hosting;

/// <summary>
/// Hot reload: watches the policy file and reloads it after changes settle (editors write in
/// several steps, and ConfigMap updates swap a symlink). An invalid file keeps the last good
/// policy and logs every error with file:line. File events only accelerate: the file is also
/// re-checked every <see cref="PollInterval"/> (watchers miss events on some filesystems). Events
/// and timestamps only say "look": the policy is reloaded, logged and audited only when the file's
/// content (its SHA-256) differs from the last content seen, so files written beside it, touches and
/// rewrites with the same bytes change nothing.
/// </summary>
public sealed partial class PolicyWatcherService(PolicyHolder policy, string path, TimeProvider time, IAuditEvents audit, ILogger<PolicyWatcherService> logger) : BackgroundService
{
    public static TimeSpan Debounce { get; } = TimeSpan.FromMilliseconds(200);

    public static TimeSpan PollInterval { get; } = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var full = Path.GetFullPath(path);
        var signal = new SemaphoreSlim(0);
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(full)!)
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
            IncludeSubdirectories = false,
        };
        FileSystemEventHandler changed = (_, _) => signal.Release();
        watcher.Changed += changed;
        watcher.Created += changed;
        watcher.Renamed += (_, _) => signal.Release();
        watcher.EnableRaisingEvents = true;

        var stamp = Stamp(full);
        var content = ContentHash(full);
        while (!stoppingToken.IsCancellationRequested)
        {
            bool signaled;
            try
            {
                signaled = await signal.WaitAsync(PollInterval, stoppingToken);
                await Task.Delay(Debounce, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            while (signal.CurrentCount > 0)
            {
                await signal.WaitAsync(stoppingToken);
            }

            var now = Stamp(full);
            if (!signaled && now == stamp)
            {
                continue;
            }

            stamp = now;
            var hash = ContentHash(full);
            if (hash == content)
            {
                continue;
            }

            content = hash;
            var result = policy.Reload();
            if (result.Applied)
            {
                LogReloaded(logger, full, result.Version, policy.Current.Agents.All.Count);
            }
            else
            {
                LogRejected(logger, full, policy.Current.Version, string.Join(Environment.NewLine, result.Errors));
            }

            // The reload has happened (nobody waits on it to refuse); an audit outage is logged loudly, and /readyz already reports it.
            try
            {
                await audit.RaiseAsync(PolicyOperations.Reloaded(result, "", policy.Current.Agents.All.Count), stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogNotAudited(logger, full, result.Version, e);
            }
        }
    }

    /// <summary>SHA-256 of the file's bytes (following a symlink), or a marker when it cannot be read.</summary>
    private static string ContentHash(string file)
    {
        try
        {
            using var stream = File.OpenRead(file);
            return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unreadable: " + e.GetType().Name;
        }
    }

    private static (DateTime, long) Stamp(string file)
    {
        var info = new FileInfo(file);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Policy {File} reloaded: version {Version}, {Agents} agents")]
    private static partial void LogReloaded(ILogger logger, string file, string version, int agents);

    [LoggerMessage(EventId = 301, Level = LogLevel.Error, Message = "Policy {File} is invalid and was NOT applied; version {Version} stays in force:\n{Errors}")]
    private static partial void LogRejected(ILogger logger, string file, string version, string errors);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "Policy {File} reload (version {Version}) could NOT be recorded in the audit trail")]
    private static partial void LogNotAudited(ILogger logger, string file, string version, Exception error);
}
