namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary>Which clock decides lease deadlines, expiry and token times (docs/reliability.md, "One clock").</summary>
    public sealed class ClockOptions
    {
        /// <summary>
        /// <c>redis</c> (default in production): this host's clock corrected by its measured offset from
        /// Redis TIME, so every replica decides on one clock; <c>system</c>: this host's clock as is
        /// (then every replica's clock must be synchronized, e.g. NTP, within the skew you can accept).
        /// </summary>
        public string Source { get; set; } = "redis";

        /// <summary>How often the offset from Redis TIME is measured again.</summary>
        public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(5);

        /// <summary>An offset from Redis larger than this is logged as a warning (the clock is corrected all the same).</summary>
        public TimeSpan WarnSkew { get; set; } = TimeSpan.FromSeconds(1);

        public IEnumerable<string> Problems()
        {
            if (Source is not ("redis" or "system"))
            {
                yield return "CredBroker:Clock:Source must be 'redis' or 'system'.";
            }

            if (SyncInterval < TimeSpan.FromMilliseconds(100) || SyncInterval > TimeSpan.FromMinutes(10))
            {
                yield return "CredBroker:Clock:SyncInterval must be between 100 ms and 10 minutes.";
            }
        }
    }
}
