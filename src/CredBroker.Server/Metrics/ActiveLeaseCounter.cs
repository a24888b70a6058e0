using CredBroker.Core.Leases;

namespace CredBroker.Server.Metrics;

/// <summary>
/// Refreshes <c>credbroker_active_leases</c> in the background, so a scrape of /metrics (which
/// needs no credentials) never costs a Redis round trip. While the store is unreachable the gauge
/// has no sample; /readyz says why.
/// </summary>
public sealed class ActiveLeaseCounter(IOpenLeaseCount store, BrokerMetrics metrics, TimeSpan interval) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval);
        do
        {
            try
            {
                metrics.SetActiveLeases(await store.CountOpenAsync(stoppingToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                metrics.SetActiveLeases(null);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
