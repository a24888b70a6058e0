namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class AuditOptions
    {
        /// <summary>Redis for the audit chain; unset = the lease store's Redis (CredBroker:Redis:Configuration).</summary>
        public string? RedisConfiguration { get; set; }

        /// <summary>
        /// A file holding the checkpoint HMAC key (at least 32 bytes, base64 or raw); unset = checkpoints are
        /// ES256-signed with the first token signing key (verifiable with the JWKS while that key is published).
        /// </summary>
        public string? CheckpointKeyFile { get; set; }

        /// <summary>A signed checkpoint every this many records.</summary>
        public int CheckpointInterval { get; set; } = 100;

        /// <summary>
        /// Group commit: appends that arrive while a batch is being written go together in the next one
        /// (one round trip, one fsync); at most this many per batch (1-4096).
        /// </summary>
        public int MaxBatch { get; set; } = 256;

        /// <summary>Records kept at most (0 = no count limit).</summary>
        public long MaxRecords { get; set; }

        /// <summary>Records older than this are dropped and the chain re-anchored (null = kept until MaxRecords).</summary>
        public TimeSpan? MaxAge { get; set; } = TimeSpan.FromDays(400);

        /// <summary>Also append every record as one JSON line to this file (for a SIEM shipper); unset = no file.</summary>
        public string? JsonLinesFile { get; set; }

        /// <summary>How often QueryAudit followers look for records appended by other replicas.</summary>
        public TimeSpan FollowPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

        /// <summary>
        /// Refusals (token.denied, operator.auth_failed) from one source within this window: the first is
        /// recorded at once, the rest as one summary record with their count when the window closes.
        /// </summary>
        public TimeSpan RefusalWindow { get; set; } = TimeSpan.FromSeconds(10);

        public Core.Audit.AuditLogOptions LogOptions() => new() { CheckpointInterval = CheckpointInterval, MaxRecords = MaxRecords, MaxAge = MaxAge, MaxBatch = MaxBatch };
    }
}
