namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class Http2Options
    {
        public int MaxStreamsPerConnection { get; set; } = 100;

        /// <summary>Idle time before the server pings a connection; null disables pings.</summary>
        public TimeSpan? KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(60);

        /// <summary>A connection whose ping is not answered within this is closed.</summary>
        public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);
    }
}
