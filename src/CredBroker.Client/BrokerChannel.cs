using System.Security.Cryptography.X509Certificates;
using CredBroker.Grpc;
using Google.Protobuf;

namespace CredBroker.Client;

/// <summary>
/// One HTTP/2 connection pool to one broker listener and the caller's credential, re-read per call
/// so rotated credentials are picked up. Every broker call is safe to repeat (BeginTask is
/// idempotent per task_id, CompleteTask and revocations per lease, IssueToken/RenewLease only mint
/// another short-lived token, the rest are reads), so UNAVAILABLE is retried with backoff.
/// </summary>
internal sealed class BrokerChannel : IDisposable
{
    private readonly HttpClient _http;
    private readonly GrpcClient _grpc;
    private readonly Func<string> _credential;

    public BrokerChannel(Uri address, Func<string> credential, X509Certificate2? clientCertificate, X509Certificate2? trustedRoot)
    {
        _http = GrpcClient.CreateHttpClient(clientCertificate, trustedRoot);
        _grpc = new GrpcClient(_http, address);
        _credential = credential;
    }

    public Task<TResponse> UnaryAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, TimeSpan timeout, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        _grpc.UnaryAsync(method, request, parser, new CallOptions
        {
            Metadata = Credential(),
            Timeout = timeout,
            CancellationToken = cancellationToken,
            Idempotent = true,
        });

    public IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        _grpc.ServerStreamingAsync(method, request, parser, new CallOptions { Metadata = Credential() }, cancellationToken);

    public void Dispose() => _http.Dispose();

    private Metadata Credential() => new() { { "authorization", "Bearer " + _credential() } };
}
