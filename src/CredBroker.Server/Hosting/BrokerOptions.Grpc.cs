namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class GrpcOptions
    {
        public int MaxReceiveMessageSize { get; set; } = 64 * 1024;

        public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

        /// <summary>Cap on a unary call's deadline, and the deadline when a client sends none.</summary>
        public TimeSpan MaxUnaryDeadline { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>
        /// Streaming calls keep the client's deadline up to this; a longer one (or none) means the
        /// stream runs until either side ends it.
        /// </summary>
        public TimeSpan MaxStreamingDeadline { get; set; } = TimeSpan.FromDays(7);

        public bool CompressResponses { get; set; }

        /// <summary>Concurrent server streams (WatchRevocations, WatchApproval, QueryAudit) per authenticated identity and listener.</summary>
        public int MaxStreamsPerIdentity { get; set; } = 16;

        /// <summary>Open connections per source IP address on each gRPC listener; more are closed at once.</summary>
        public int MaxConnectionsPerAddress { get; set; } = 256;
    }
}
