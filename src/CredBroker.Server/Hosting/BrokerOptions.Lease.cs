namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class LeaseOptions
    {
        /// <summary>How often this replica sweeps expired leases (every replica sweeps; claims are atomic).</summary>
        public TimeSpan SweepInterval { get; set; } = Core.Leases.LeaseSweeper.DefaultInterval;

        /// <summary>How often WatchRevocations checks the log for events appended by other replicas (this replica's own wake watchers at once).</summary>
        public TimeSpan RevocationPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

        /// <summary>Revocation events kept per shard (16 shards); a validator further behind must resync.</summary>
        public int RevocationLogMaxLength { get; set; } = new Core.Leases.LeaseStoreOptions().RevocationLogMaxLength;

        public Core.Leases.LeaseStoreOptions StoreOptions() => new() { RevocationLogMaxLength = RevocationLogMaxLength };
    }
}
