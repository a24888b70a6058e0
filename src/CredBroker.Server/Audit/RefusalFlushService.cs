using CredBroker.Core.Audit;
using CredBroker.Core.Broker;

namespace CredBroker.Server.Audit;

/// <summary>
/// Writes the aggregated refusal summaries (<see cref="RefusalAggregator"/>) once their window has
/// closed, checking every second, and every pending one when the broker stops. A summary that cannot
/// be appended (audit down) stays counted and is retried on the next tick.
/// </summary>
public sealed partial class RefusalFlushService(RefusalAggregator refusals, ILogger<RefusalFlushService> logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Tick < refusals.Window ? Tick : refusals.Window);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await FlushAsync(all: false, stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await FlushAsync(all: true, cancellationToken);
    }

    private async Task FlushAsync(bool all, CancellationToken cancellationToken)
    {
        try
        {
            await refusals.FlushAsync(all, cancellationToken);
        }
        catch (BrokerException e)
        {
            LogFlushFailed(logger, refusals.Pending, e.Message);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogFlushFailed(logger, refusals.Pending, "stopped before the summary was written");
        }
    }

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "Could not append the aggregated refusal summaries yet ({Pending} refusals pending): {Problem}")]
    private static partial void LogFlushFailed(ILogger logger, long pending, string problem);
}
