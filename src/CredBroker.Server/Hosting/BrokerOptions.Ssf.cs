namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary>`CredBroker:Ssf`: revocations as Security Event Tokens over the OpenID Shared Signals Framework (docs/ssf.md).</summary>
    public SsfOptions Ssf { get; set; } = new();

    public sealed class SsfOptions
    {
        /// <summary>Serve the transmitter (metadata, stream management, poll, push) on the HTTP listener.</summary>
        public bool Enabled { get; set; } = true;

        /// <summary>The receivers (downstream APIs) allowed to manage streams: each an id, a bearer secret in a file, and the SETs' audience.</summary>
        public List<SsfReceiverOptions> Receivers { get; set; } = [];

        /// <summary>The longest a poll request (RFC 8936, returnImmediately false) waits for events.</summary>
        public TimeSpan MaxLongPoll { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>The most SETs one poll response carries (maxEvents is capped to it).</summary>
        public int MaxEventsPerPoll { get; set; } = 500;

        /// <summary>How long one push (RFC 8935 POST) may take before it counts as failed and is retried.</summary>
        public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>The first retry delay after a failed push; doubled per failure up to <see cref="PushRetryMax"/>.</summary>
        public TimeSpan PushRetryInitial { get; set; } = TimeSpan.FromMilliseconds(500);

        public TimeSpan PushRetryMax { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>How often each replica re-reads the stream list (new, changed, deleted push streams; the push claim is renewed as often).</summary>
        public TimeSpan StreamRefreshInterval { get; set; } = TimeSpan.FromSeconds(2);

        /// <summary>Accept http:// push endpoints (default: https only; dev mode allows http to loopback).</summary>
        public bool AllowHttpPushEndpoints { get; set; }

        public int MaxStreamsPerReceiver { get; set; } = 5;

        public IEnumerable<string> Problems()
        {
            if (MaxLongPoll < TimeSpan.Zero || MaxLongPoll > TimeSpan.FromMinutes(5) || MaxEventsPerPoll is < 1 or > Core.Leases.RevocationFeed.MaxPageSize
                || PushTimeout <= TimeSpan.Zero || PushRetryInitial <= TimeSpan.Zero || PushRetryMax < PushRetryInitial
                || StreamRefreshInterval <= TimeSpan.Zero || MaxStreamsPerReceiver < 1)
            {
                yield return $"CredBroker:Ssf: MaxLongPoll must be 0 to 5 minutes, MaxEventsPerPoll 1 to {Core.Leases.RevocationFeed.MaxPageSize}, "
                    + "PushTimeout, PushRetryInitial and StreamRefreshInterval > 0, PushRetryMax ≥ PushRetryInitial, MaxStreamsPerReceiver ≥ 1.";
            }

            for (var i = 0; i < Receivers.Count; i++)
            {
                var r = Receivers[i];
                if (string.IsNullOrWhiteSpace(r.Id) || string.IsNullOrWhiteSpace(r.SecretFile))
                {
                    yield return $"CredBroker:Ssf:Receivers:{i} needs Id and SecretFile (a file holding the receiver's bearer secret, at least 32 characters).";
                }
            }

            if (Receivers.Select(r => r.Id).Distinct(StringComparer.Ordinal).Count() != Receivers.Count)
            {
                yield return "CredBroker:Ssf:Receivers: receiver ids must be unique.";
            }
        }
    }

    public sealed class SsfReceiverOptions
    {
        public string Id { get; set; } = string.Empty;

        /// <summary>A file holding the receiver's bearer secret (never the secret itself in configuration).</summary>
        public string SecretFile { get; set; } = string.Empty;

        /// <summary>The <c>aud</c> of this receiver's SETs; the receiver id when unset.</summary>
        public string? Audience { get; set; }
    }
}
