namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class RedisOptions
    {
        /// <summary>A StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379,password=...</c>.</summary>
        public string? Configuration { get; set; }

        /// <summary>A file holding the Redis password (a mounted Secret); overrides any password= in Configuration.</summary>
        public string? PasswordFile { get; set; }

        /// <summary>PEM CA certificate(s) Redis's TLS certificate must chain to (needs ssl=true in Configuration); unset = the system trust store.</summary>
        public string? CaFile { get; set; }

        /// <summary>The Redis ACL user the broker authenticates as (with the password from PasswordFile); unset = the default user.</summary>
        public string? User { get; set; }

        /// <summary>Connect and command timeout (sync and async) of every Redis call; past it the call fails UNAVAILABLE.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

        /// <summary>Replicas that must acknowledge a revocation, completion or quarantine (Redis WAIT); 0 = do not wait.</summary>
        public int WaitReplicas { get; set; }

        /// <summary>
        /// With WaitReplicas: every lease write (opening a lease, renewal, approval) and every audit batch waits for the
        /// replicas too, not only the writes that end access; a failover then loses no acknowledged lease and no audit
        /// record whose action went ahead (docs/reliability.md).
        /// </summary>
        public bool WaitForLeaseWrites { get; set; }

        /// <summary>How long WAIT waits for WaitReplicas acknowledgements; shorter than Timeout.</summary>
        public TimeSpan WaitTimeout { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>Settings that cannot work, each naming its key.</summary>
        public IEnumerable<string> Problems()
        {
            var (min, max) = CredBroker.Redis.RedisConnectionOptions.TimeoutRange;
            if (Timeout < min || Timeout > max)
            {
                yield return $"CredBroker:Redis:Timeout must be between {min.TotalMilliseconds:0} ms and {max.TotalSeconds:0} s.";
            }

            if (WaitReplicas < 0)
            {
                yield return "CredBroker:Redis:WaitReplicas must be 0 (no WAIT) or more.";
            }
            else if (WaitReplicas > 0 && (WaitTimeout <= TimeSpan.Zero || WaitTimeout >= Timeout))
            {
                yield return "CredBroker:Redis:WaitTimeout must be above 0 and shorter than CredBroker:Redis:Timeout (else the client gives up before WAIT answers).";
            }
        }

        /// <summary>The replica acknowledgement the lease store waits for, or null.</summary>
        public CredBroker.Redis.RedisReplicaAcks? ReplicaAcks() => WaitReplicas > 0 ? new(WaitReplicas, WaitTimeout, WaitForLeaseWrites) : null;
    }
}
