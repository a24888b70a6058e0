namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary>Liveness (docs/operations.md, "Health").</summary>
    public sealed class HealthOptions
    {
        /// <summary>
        /// A replica that has not been ready once within this time after it started answers <c>/healthz</c> with 503,
        /// so the orchestrator restarts it (a start that is stuck, e.g. a Redis client that never connects). Once it
        /// has been ready, <c>/healthz</c> never depends on Redis again (an outage must not restart every replica).
        /// <c>00:00:00</c> turns this off.
        /// </summary>
        public TimeSpan StartupGrace { get; set; } = TimeSpan.FromMinutes(5);

        public IEnumerable<string> Problems()
        {
            if (StartupGrace != TimeSpan.Zero && (StartupGrace < TimeSpan.FromSeconds(10) || StartupGrace > TimeSpan.FromHours(24)))
            {
                yield return "CredBroker:Health:StartupGrace must be 00:00:00 (off) or between 10 seconds and 24 hours.";
            }
        }
    }
}
