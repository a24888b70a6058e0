using System.Security.Cryptography.X509Certificates;
using CredBroker.Contracts.V1;
using CredBroker.Grpc;
using Google.Protobuf;

namespace CredBroker.Client;

/// <summary>
/// A .NET client for agent runtimes and downstream APIs: the AgentBroker and TokenValidation
/// services over HTTP/2. Failures surface as <see cref="RpcException"/> with the broker's status.
/// </summary>
public sealed class CredBrokerClient : IDisposable
{
    private const string AgentBroker = "/credbroker.v1.AgentBroker/";
    private const string TokenValidation = "/credbroker.v1.TokenValidation/";

    private readonly BrokerChannel _channel;

    /// <param name="address">The agent listener, e.g. <c>http://127.0.0.1:5401</c> or <c>https://broker:5401</c>.</param>
    /// <param name="credential">Returns the current workload credential (re-read per call, so rotated credentials are picked up).</param>
    /// <param name="clientCertificate">Presented for mTLS (with its private key).</param>
    /// <param name="trustedRoot">The CA the broker's TLS certificate must chain to, instead of the system store.</param>
    public CredBrokerClient(Uri address, Func<string> credential, X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null) =>
        _channel = new BrokerChannel(address, credential, clientCertificate, trustedRoot);

    /// <summary>Per-call timeout sent as the gRPC deadline (each retry attempt gets its own).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    public Task<BeginTaskResponse> BeginTaskAsync(BeginTaskRequest request, CancellationToken cancellationToken = default) =>
        Call(AgentBroker + "BeginTask", request, BeginTaskResponse.Parser, cancellationToken);

    public Task<IssueTokenResponse> IssueTokenAsync(IssueTokenRequest request, CancellationToken cancellationToken = default) =>
        Call(AgentBroker + "IssueToken", request, IssueTokenResponse.Parser, cancellationToken);

    public Task<RenewLeaseResponse> RenewLeaseAsync(RenewLeaseRequest request, CancellationToken cancellationToken = default) =>
        Call(AgentBroker + "RenewLease", request, RenewLeaseResponse.Parser, cancellationToken);

    public Task<CompleteTaskResponse> CompleteTaskAsync(string leaseId, CancellationToken cancellationToken = default) =>
        Call(AgentBroker + "CompleteTask", new CompleteTaskRequest { LeaseId = leaseId }, CompleteTaskResponse.Parser, cancellationToken);

    /// <summary>
    /// The status of a pending approval (BeginTask's <c>approval_id</c>): the current one, then each
    /// change, ending after the decision. The <c>approved</c> status carries the task's token.
    /// </summary>
    public IAsyncEnumerable<ApprovalStatus> WatchApprovalAsync(string approvalId, CancellationToken cancellationToken = default) =>
        _channel.ServerStreamingAsync(AgentBroker + "WatchApproval", new WatchApprovalRequest { ApprovalId = approvalId }, ApprovalStatus.Parser, cancellationToken);

    public Task<IntrospectResponse> IntrospectAsync(string token, CancellationToken cancellationToken = default) =>
        Call(TokenValidation + "Introspect", new IntrospectRequest { Token = token }, IntrospectResponse.Parser, cancellationToken);

    public Task<GetSigningKeysResponse> GetSigningKeysAsync(CancellationToken cancellationToken = default) =>
        Call(TokenValidation + "GetSigningKeys", new GetSigningKeysRequest(), GetSigningKeysResponse.Parser, cancellationToken);

    /// <summary>
    /// Revocation events from <paramref name="cursor"/> (empty: every retained event; with
    /// <paramref name="fromNow"/>: only new ones), then live ones until cancelled. Keep the last
    /// event's cursor and pass it back after a disconnect to resume without missing any.
    /// </summary>
    public IAsyncEnumerable<RevocationEvent> WatchRevocationsAsync(string cursor = "", bool fromNow = false, CancellationToken cancellationToken = default) =>
        _channel.ServerStreamingAsync(TokenValidation + "WatchRevocations", new WatchRevocationsRequest { Cursor = cursor, FromNow = fromNow },
            RevocationEvent.Parser, cancellationToken);

    public void Dispose() => _channel.Dispose();

    private Task<TResponse> Call<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        _channel.UnaryAsync(method, request, parser, Timeout, cancellationToken);
}
