using CredBroker.Core.Tokens;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>
/// Keeps this replica's signing keys in step with the shared schedule: rescans key files, rereads
/// the schedule, and rotates when the automatic schedule says so (the version check lets one
/// replica win). The first load happens before the listeners open.
/// </summary>
public sealed partial class KeyScheduleService(KeyRotation rotation, TimeSpan interval, TimeProvider time, ILogger<KeyScheduleService> logger) : BackgroundService
{
    private string? _lastProblem;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await RefreshOnceAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await RefreshOnceAsync(stoppingToken);
        }
    }

    private async Task RefreshOnceAsync(CancellationToken cancellationToken)
    {
        string? problem;
        try
        {
            var fileProblems = await rotation.RefreshAsync(cancellationToken);
            if (await rotation.RotateIfDueAsync(cancellationToken) is { } rotated)
            {
                LogAutoRotated(logger, rotated.Keys[^1].Kid, rotated.Keys[^1].ActivateAt);
            }

            problem = fileProblems.Count > 0 ? string.Join("; ", fileProblems) : null;
        }
        catch (KeyRotationException e)
        {
            problem = "Automatic key rotation is due but cannot happen: " + e.Message;
        }
        catch (Exception e) when (e is Core.Broker.StoreUnavailableException or Core.Broker.BrokerException or System.Text.Json.JsonException or InvalidDataException)
        {
            problem = "The key schedule could not be read; keeping the last one: " + e.Message;
        }

        // Report a problem once when it appears, not every interval.
        if (problem is not null && problem != _lastProblem)
        {
            LogProblem(logger, problem);
        }

        _lastProblem = problem;
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Automatic signing key rotation: {Kid} signs from {ActivateAt:O}")]
    private static partial void LogAutoRotated(ILogger logger, string kid, DateTimeOffset activateAt);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Signing keys: {Problem}")]
    private static partial void LogProblem(ILogger logger, string problem);
}
