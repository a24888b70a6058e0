namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class SigningOptions
    {
        /// <summary>PEM EC P-256 private key files. The first signs until the first rotation.</summary>
        public List<string> KeyFiles { get; set; } = [];

        /// <summary>A directory (a mounted Secret) whose <c>*.pem</c> keys are loaded and rescanned, so a new key needs no restart.</summary>
        public string? KeyDirectory { get; set; }

        /// <summary>How long a new key is published before it signs; keep it above validators' JWKS cache lifetime.</summary>
        public TimeSpan PublishLead { get; set; } = new Core.Tokens.KeyRotationOptions().PublishLead;

        /// <summary>Added to the longest token TTL to decide how long a retired key stays published.</summary>
        public TimeSpan ClockSkew { get; set; } = new Core.Tokens.KeyRotationOptions().ClockSkew;

        /// <summary>Rotate automatically when the signing key has signed this long (needs a spare key mounted); unset = only on request.</summary>
        public TimeSpan? RotateEvery { get; set; }

        /// <summary>How often each replica rescans key files and rereads the shared schedule.</summary>
        public TimeSpan ScheduleRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

        public Core.Tokens.KeyRotationOptions RotationOptions() =>
            new() { PublishLead = PublishLead, ClockSkew = ClockSkew, RotateEvery = RotateEvery };
    }
}
