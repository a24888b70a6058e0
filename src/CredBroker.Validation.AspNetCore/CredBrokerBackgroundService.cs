using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CredBroker.Validation.AspNetCore;

/// <summary>
/// Keeps one scheme current while the host runs: refreshes the JWKS every
/// <see cref="CredBrokerOptions.JwksRefreshInterval"/> (retrying a failed fetch after 0.5 s, doubling to
/// 10 s, so an API started before its broker gets the keys soon after the broker is up) and follows the
/// revocation feed. Registered once per scheme; stops with the host.
/// </summary>
public sealed partial class CredBrokerBackgroundService(string scheme, CredBrokerSchemes schemes, TimeProvider time, ILogger<CredBrokerBackgroundService> logger)
    : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromSeconds(10);

    /// <summary>The scheme this service keeps current.</summary>
    public string Scheme => scheme;

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var state = schemes.Get(scheme);
        var revocations = state.Revocations?.RunAsync(stoppingToken) ?? Task.CompletedTask;
        await Task.WhenAll(RefreshKeysAsync(state, stoppingToken), revocations);
    }

    private async Task RefreshKeysAsync(CredBrokerScheme state, CancellationToken stoppingToken)
    {
        var retry = FirstRetry;
        var failing = false;
        try
        {
            while (true)
            {
                TimeSpan pause;
                if (await state.Keys.RefreshAsync(stoppingToken))
                {
                    if (failing)
                    {
                        LogKeysRecovered(logger, scheme);
                    }

                    failing = false;
                    retry = FirstRetry;
                    pause = state.Options.JwksRefreshInterval;
                }
                else
                {
                    if (!failing)
                    {
                        // The reason, never a document or a key; once per outage, not once per retry.
                        LogKeysFailing(logger, scheme, state.Keys.LastError?.GetType().Name ?? "unknown", state.Keys.LastError?.Message ?? string.Empty);
                    }

                    failing = true;
                    pause = retry < state.Options.JwksRefreshInterval ? retry : state.Options.JwksRefreshInterval;
                    retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LongestRetry.Ticks));
                }

                await Task.Delay(pause, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "CredBroker scheme {Scheme}: fetching the JWKS failed ({Error}: {Message}); retrying")]
    private static partial void LogKeysFailing(ILogger logger, string scheme, string error, string message);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "CredBroker scheme {Scheme}: JWKS fetched again")]
    private static partial void LogKeysRecovered(ILogger logger, string scheme);
}
