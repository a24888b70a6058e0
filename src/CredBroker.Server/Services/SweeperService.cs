using CredBroker.Core.Leases;
using CredBroker.Server.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>Runs this replica's <see cref="LeaseSweeper"/>; every replica runs one, no leader.</summary>
public sealed partial class SweeperService(LeaseSweeper sweeper, TimeSpan interval, ILogger<SweeperService> logger, BrokerMetrics? metrics = null) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        sweeper.RunAsync(interval, result =>
        {
            metrics?.Swept(result);
            if (result.Expired > 0)
            {
                LogSwept(logger, result.Expired, result.MaxLag.TotalMilliseconds);
            }

            if (result.UnreachableShards.Count > 0)
            {
                metrics?.SweepFailed();
                var shards = string.Join(",", result.UnreachableShards);
                if (shards != _lastUnreachable)
                {
                    LogShardsDown(logger, shards, result.UnreachableReason ?? "");
                }

                _lastUnreachable = shards;
            }
            else
            {
                _lastUnreachable = null;
            }
        }, e =>
        {
            metrics?.SweepFailed();
            LogStoreDown(logger, e.Message);
        }, stoppingToken);

    private string? _lastUnreachable;

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Lease sweep skipped unreachable shards {Shards} (retried with backoff; the other shards are swept): {Reason}")]
    private static partial void LogShardsDown(ILogger logger, string shards, string reason);

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Expired {Count} leases past their deadline (latest {LagMs:0} ms after it)")]
    private static partial void LogSwept(ILogger logger, int count, double lagMs);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Lease sweep failed, retrying with backoff: {Reason}")]
    private static partial void LogStoreDown(ILogger logger, string reason);
}
