using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// How the broker connects to Redis, beyond the StackExchange.Redis configuration string: the ACL
/// user and password (from a mounted secret, not the connection string), the CA that Redis's TLS
/// certificate must chain to, and the one timeout every command gets.
/// </summary>
public sealed record RedisConnectionOptions
{
    /// <summary>The protocol used when the configuration string names none (<c>protocol=resp2|resp3</c>); docs/operations.md says why.</summary>
    public const RedisProtocol DefaultProtocol = RedisProtocol.Resp2;

    /// <summary>The ACL user (Redis 6+); unset = the <c>default</c> user (or <c>user=</c> in the configuration string).</summary>
    public string? User { get; init; }

    /// <summary>The password; overrides any <c>password=</c> in the configuration string.</summary>
    public string? Password { get; init; }

    /// <summary>PEM CA certificate(s) Redis's TLS certificate must chain to (needs <c>ssl=true</c>); unset = the system trust store.</summary>
    public X509Certificate2Collection? TrustedCas { get; init; }

    /// <summary>
    /// Connect, sync and async timeout of every command. A command that has no answer by then fails
    /// (and the store reports itself unavailable): a stopped or partitioned Redis never hangs a call.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The shortest and longest <see cref="Timeout"/> accepted.</summary>
    public static (TimeSpan Min, TimeSpan Max) TimeoutRange { get; } = (TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(60));

    /// <summary>
    /// Parses a StackExchange.Redis configuration string and applies the credentials, the private CA and
    /// the broker's connection rules: never abort on a failed first connect (calls fail closed until
    /// Redis is back), fail fast while disconnected (no backlog: "Redis down" is answered at once, not
    /// after queueing), <see cref="Timeout"/> for connect, sync and async commands, and
    /// <see cref="DefaultProtocol"/> unless the string names one. A <c>serviceName=</c> makes the listed
    /// endpoints Sentinels, which the client asks for the current primary.
    /// </summary>
    public ConfigurationOptions Configure(string configuration)
    {
        if (Timeout < TimeoutRange.Min || Timeout > TimeoutRange.Max)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, $"The Redis timeout must be between {TimeoutRange.Min.TotalMilliseconds:0} ms and {TimeoutRange.Max.TotalSeconds:0} s.");
        }

        var config = ConfigurationOptions.Parse(configuration);
        if (User is { Length: > 0 } user)
        {
            config.User = user;
        }

        if (Password is { Length: > 0 } password)
        {
            config.Password = password;
        }

        if (TrustedCas is { Count: > 0 } roots)
        {
            if (!config.Ssl)
            {
                throw new ArgumentException("A Redis CA was given but the configuration does not enable TLS (add ssl=true).", nameof(configuration));
            }

            config.CertificateValidation += (_, certificate, _, errors) => ChainsTo(certificate, errors, roots);
        }

        config.Protocol ??= DefaultProtocol;
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        // Reconnect a lost node every 250 ms (not with a growing backoff): calls for it fail fast meanwhile,
        // and the sweepers expire what fell due during the outage about as soon as it is back. The client tries
        // to reconnect on its heartbeat (default 1 s), so the heartbeat runs at the same pace.
        config.ReconnectRetryPolicy = new LinearRetry(250);
        config.HeartbeatInterval = TimeSpan.FromMilliseconds(250);
        var millis = (int)Timeout.TotalMilliseconds;
        config.ConnectTimeout = millis;
        config.SyncTimeout = millis;
        config.AsyncTimeout = millis;
        return config;
    }

    internal static bool ChainsTo(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        // A name mismatch or a missing certificate is never excused; only the chain is judged here.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(server);
    }
}
