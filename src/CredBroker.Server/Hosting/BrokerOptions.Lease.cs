namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class LeaseOptions
    {
        /// <summary>How often this replica sweeps expired leases (every replica sweeps; claims are atomic).</summary>
        public TimeSpan SweepInterval { get; set; } = Core.Leases.LeaseSweeper.DefaultInterval;

        /// <summary>How often WatchRevocations checks the log for events appended by other replicas (this replica's own wake watchers at once).</summary>
        public TimeSpan RevocationPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

        /// <summary>
        /// How long revocation events are kept (by time, not count): at least the longest token lifetime
        /// (agents' max_token_ttl) plus validators' clock skew; a validator whose cursor is older must resync.
        /// </summary>
        public TimeSpan RevocationRetention { get; set; } = Core.Leases.LeaseStoreOptions.DefaultRevocationRetention;

        public Core.Leases.LeaseStoreOptions StoreOptions() => new() { RevocationRetention = RevocationRetention };
    }
}
