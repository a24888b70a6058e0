using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CredBroker.Validation.AspNetCore;

/// <summary>
/// Readiness of one CredBroker scheme (registered automatically as <c>credbroker-{scheme}</c>, tags
/// <c>credbroker</c> and <c>ready</c>). Unhealthy: no signing keys yet or keys stale; the revocation
/// feed has not caught up (no heartbeat yet, i.e. the broker may still hold revocations not applied);
/// or the feed has been silent longer than <see cref="CredBrokerOptions.RevocationMaxOutage"/> (tokens
/// are refused then, unless fail-open). Degraded: the feed is reconnecting within that grace period.
/// Healthy otherwise.
/// </summary>
public sealed class CredBrokerHealthCheck(CredBrokerSchemes schemes, string scheme, TimeProvider time) : IHealthCheck
{
    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Check(schemes.Get(scheme), time.GetUtcNow()));

    private static HealthCheckResult Check(CredBrokerScheme state, DateTimeOffset now)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        if (state.Keys.LastSuccess is { } fetched)
        {
            data["jwks_fetched_at"] = fetched;
        }

        if (state.Keys.Current is null)
        {
            return HealthCheckResult.Unhealthy($"no signing keys yet ({state.Keys.LastError?.Message ?? "first fetch pending"})", data: data);
        }

        if (state.Keys.IsStale(now))
        {
            return HealthCheckResult.Unhealthy($"signing keys stale (last fetched {state.Keys.LastSuccess:O}; {state.Keys.LastError?.Message})", data: data);
        }

        if (state.Revocations is not { } sync)
        {
            return HealthCheckResult.Healthy("signing keys current; no revocation feed configured", data);
        }

        data["revocation_cursor"] = sync.Cursor;
        data["revocations_applied"] = sync.Applied;
        data["revocation_last_contact"] = sync.LastContact;
        var silent = now - sync.LastContact;
        if (!sync.IsCaughtUp)
        {
            return HealthCheckResult.Unhealthy("revocation feed has not caught up yet", data: data);
        }

        if (!sync.IsHealthy)
        {
            return HealthCheckResult.Unhealthy(
                $"revocation feed silent for {silent.TotalSeconds:0} s, longer than the {sync.MaxOutage.TotalSeconds:0} s grace period", data: data);
        }

        return sync.IsConnected
            ? HealthCheckResult.Healthy("signing keys current; revocation feed live", data)
            : HealthCheckResult.Degraded($"revocation feed reconnecting (silent for {silent.TotalSeconds:0} s of {sync.MaxOutage.TotalSeconds:0} s grace)", data: data);
    }
}
