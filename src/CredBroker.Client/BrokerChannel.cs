using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace CredBroker.Client;

/// <summary>
/// How every CredBroker client talks to a listener: HTTP/2 (h2c for <c>http://</c>, TLS for
/// <c>https://</c>), the caller's credential as <c>authorization: Bearer …</c> call metadata
/// (re-read per call, so rotated credentials are picked up), and UNAVAILABLE retried by the
/// channel's service-config retry policy. Every broker call is safe to repeat (BeginTask is
/// idempotent per task_id, CompleteTask and revocations per lease, IssueToken/RenewLease only mint
/// another short-lived token, the rest are reads).
/// </summary>
internal static class BrokerChannel
{
    /// <summary>Largest message sent or accepted (the broker's own limit is the same).</summary>
    public const int MaxMessageSize = 4 * 1024 * 1024;

    public static GrpcChannel Create(Uri address, Func<CancellationToken, ValueTask<string>> credential, X509Certificate2? clientCertificate,
        X509Certificate2? trustedRoot, RetrySettings? retry = null)
    {
        var options = new GrpcChannelOptions
        {
            HttpHandler = CreateHandler(clientCertificate, trustedRoot),
            DisposeHttpClient = true,
            Credentials = ChannelCredentials.Create(IsTls(address) ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure, Credentials(credential)),
        };
        Configure(options, retry ?? new RetrySettings());
        return GrpcChannel.ForAddress(address, options);
    }

    /// <summary>The channel settings shared by <see cref="Create"/> and <c>AddCredBrokerClient</c>.</summary>
    public static void Configure(GrpcChannelOptions options, RetrySettings retry)
    {
        // The broker serves cleartext h2c only on loopback (production refuses it elsewhere), where the
        // bearer credential must still be sent; on https:// the call credentials ride on TLS.
        options.UnsafeUseInsecureChannelCallCredentials = true;
        options.MaxReceiveMessageSize = MaxMessageSize;
        options.MaxSendMessageSize = MaxMessageSize;
        options.ServiceConfig = new ServiceConfig
        {
            MethodConfigs =
            {
                new MethodConfig
                {
                    Names = { MethodName.Default },
                    RetryPolicy = retry.MaxAttempts <= 1 ? null : new RetryPolicy
                    {
                        MaxAttempts = retry.MaxAttempts,
                        InitialBackoff = retry.InitialBackoff,
                        MaxBackoff = retry.MaxBackoff,
                        BackoffMultiplier = 2,
                        RetryableStatusCodes = { StatusCode.Unavailable },
                    },
                },
            },
        };
    }

    /// <summary>Call credentials that ask <paramref name="credential"/> for the current credential on every call.</summary>
    public static CallCredentials Credentials(Func<CancellationToken, ValueTask<string>> credential) =>
        CallCredentials.FromInterceptor(async (context, metadata) => AddBearer(metadata, await credential(context.CancellationToken)));

    /// <summary>Adds <c>authorization: Bearer …</c>; an empty credential sends none (the caller is identified by its mTLS certificate).</summary>
    public static void AddBearer(Metadata metadata, string? credential)
    {
        if (!string.IsNullOrWhiteSpace(credential))
        {
            metadata.Add("authorization", "Bearer " + credential.Trim());
        }
    }

    public static Func<CancellationToken, ValueTask<string>> FromSync(Func<string> credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        return _ => ValueTask.FromResult(credential());
    }

    public static bool IsTls(Uri address) => address.Scheme == Uri.UriSchemeHttps;

    /// <summary>
    /// HTTP/2 connections for gRPC: <paramref name="clientCertificate"/> (with its private key) is
    /// presented for mTLS; <paramref name="trustedRoot"/>, when given, replaces the system trust
    /// store for the server's certificate (a private CA).
    /// </summary>
    public static SocketsHttpHandler CreateHandler(X509Certificate2? clientCertificate, X509Certificate2? trustedRoot)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        if (trustedRoot is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null
                && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
                && ChainsTo(certificate, trustedRoot);
        }

        return handler;
    }

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/> alone (the system store is not consulted) and is valid for server authentication.</summary>
    private static bool ChainsTo(X509Certificate certificate, X509Certificate2 root)
    {
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
        return chain.Build(leaf);
    }
}

/// <summary>How UNAVAILABLE is retried (gRPC service-config retry policy: exponential backoff with jitter).</summary>
public sealed record RetrySettings
{
    /// <summary>Attempts in all, the first included (1 = never retry; Grpc.Net.Client caps it at 5).</summary>
    public int MaxAttempts { get; init; } = 4;

    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);
}
