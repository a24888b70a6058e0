using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using CredBroker.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace CredBroker.Client;

/// <summary>
/// A .NET client for agent runtimes and downstream APIs: the AgentBroker and TokenValidation
/// services, on the generated Grpc.Net.Client clients. Failures surface as
/// <see cref="RpcException"/> with the broker's status; <see cref="RpcErrors"/> reads the
/// <c>google.rpc</c> details (<c>e.ErrorInfo</c>, <c>e.RetryInfo</c>, <c>e.GetDetail&lt;T&gt;()</c>).
/// Build one directly, or register it with <c>services.AddCredBrokerClient(...)</c>.
/// </summary>
public sealed class CredBrokerClient : IDisposable
{
    private readonly GrpcChannel? _channel;

    /// <param name="address">The agent listener, e.g. <c>http://127.0.0.1:5401</c> or <c>https://broker:5401</c>.</param>
    /// <param name="credential">Returns the current workload credential (re-read per call, so rotated credentials are picked up).</param>
    /// <param name="clientCertificate">Presented for mTLS (with its private key).</param>
    /// <param name="trustedRoot">The CA the broker's TLS certificate must chain to, instead of the system store.</param>
    public CredBrokerClient(Uri address, Func<string> credential, X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null)
        : this(address, BrokerChannel.FromSync(credential), clientCertificate, trustedRoot)
    {
    }

    /// <param name="address">The agent listener, e.g. <c>http://127.0.0.1:5401</c> or <c>https://broker:5401</c>.</param>
    /// <param name="credential">Returns the current workload credential, asked on every call (e.g. reads a rotated token file, or asks a token service).</param>
    /// <param name="clientCertificate">Presented for mTLS (with its private key).</param>
    /// <param name="trustedRoot">The CA the broker's TLS certificate must chain to, instead of the system store.</param>
    /// <param name="retry">How UNAVAILABLE is retried (default: 4 attempts, 100 ms to 2 s backoff).</param>
    public CredBrokerClient(Uri address, Func<CancellationToken, ValueTask<string>> credential, X509Certificate2? clientCertificate = null,
        X509Certificate2? trustedRoot = null, RetrySettings? retry = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(credential);
        _channel = BrokerChannel.Create(address, credential, clientCertificate, trustedRoot, retry);
        DpopUri = address;
        Broker = new AgentBroker.AgentBrokerClient(_channel);
        Validation = new TokenValidation.TokenValidationClient(_channel);
    }

    /// <summary>
    /// Wraps generated clients whose channel already carries the credential, TLS and retry settings
    /// (what <c>AddCredBrokerClient</c> registers through IHttpClientFactory).
    /// </summary>
    public CredBrokerClient(AgentBroker.AgentBrokerClient broker, TokenValidation.TokenValidationClient validation)
    {
        Broker = broker ?? throw new ArgumentNullException(nameof(broker));
        Validation = validation ?? throw new ArgumentNullException(nameof(validation));
    }

    /// <summary>Per-call timeout, sent as the gRPC deadline (retries of UNAVAILABLE happen within it).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// When set, BeginTask, IssueToken and RenewLease send a fresh DPoP proof (RFC 9449) signed by this
    /// key in the <c>dpop</c> metadata, and the broker binds the tokens to it (<c>cnf.jkt</c>): a stolen
    /// token is useless without the key. Use one key per process (<see cref="Validation.DpopKey.Generate"/>)
    /// or a supplied one; a lease opened with a key answers only to that key. The client does not dispose it.
    /// </summary>
    public Validation.DpopKey? DpopKey { get; init; }

    /// <summary>
    /// The agent listener's address as the broker knows it (its <c>CredBroker:Dpop:AgentUris</c>), for the
    /// proofs' <c>htu</c>. Default: the address this client connects to (when it built its channel).
    /// </summary>
    public Uri? DpopUri { get; init; }

    /// <summary>The generated AgentBroker client, for calls that need their own <see cref="CallOptions"/>.</summary>
    public AgentBroker.AgentBrokerClient Broker { get; }

    /// <summary>The generated TokenValidation client.</summary>
    public TokenValidation.TokenValidationClient Validation { get; }

    public Task<BeginTaskResponse> BeginTaskAsync(BeginTaskRequest request, CancellationToken cancellationToken = default) =>
        WithProofAsync(options => Broker.BeginTaskAsync(request, options), "BeginTask", cancellationToken);

    public Task<IssueTokenResponse> IssueTokenAsync(IssueTokenRequest request, CancellationToken cancellationToken = default) =>
        WithProofAsync(options => Broker.IssueTokenAsync(request, options), "IssueToken", cancellationToken);

    public Task<RenewLeaseResponse> RenewLeaseAsync(RenewLeaseRequest request, CancellationToken cancellationToken = default) =>
        WithProofAsync(options => Broker.RenewLeaseAsync(request, options), "RenewLease", cancellationToken);

    public Task<CompleteTaskResponse> CompleteTaskAsync(string leaseId, CancellationToken cancellationToken = default) =>
        Broker.CompleteTaskAsync(new CompleteTaskRequest { LeaseId = leaseId }, Unary(cancellationToken)).ResponseAsync;

    /// <summary>
    /// The status of a pending approval (BeginTask's <c>approval_id</c>): the current one, then each
    /// change, ending after the decision. The <c>approved</c> status carries the task's token.
    /// </summary>
    public IAsyncEnumerable<ApprovalStatus> WatchApprovalAsync(string approvalId, CancellationToken cancellationToken = default) =>
        Stream(Broker.WatchApproval(new WatchApprovalRequest { ApprovalId = approvalId }, cancellationToken: cancellationToken), cancellationToken);

    public Task<IntrospectResponse> IntrospectAsync(string token, CancellationToken cancellationToken = default) =>
        Validation.IntrospectAsync(new IntrospectRequest { Token = token }, Unary(cancellationToken)).ResponseAsync;

    public Task<GetSigningKeysResponse> GetSigningKeysAsync(CancellationToken cancellationToken = default) =>
        Validation.GetSigningKeysAsync(new GetSigningKeysRequest(), Unary(cancellationToken)).ResponseAsync;

    /// <summary>
    /// Revocation events from <paramref name="cursor"/> (empty: every retained event; with
    /// <paramref name="fromNow"/>: only new ones), then live ones until cancelled. Keep the last
    /// event's cursor and pass it back after a disconnect to resume without missing any.
    /// </summary>
    public IAsyncEnumerable<RevocationEvent> WatchRevocationsAsync(string cursor = "", bool fromNow = false, CancellationToken cancellationToken = default) =>
        Stream(Validation.WatchRevocations(new WatchRevocationsRequest { Cursor = cursor, FromNow = fromNow }, cancellationToken: cancellationToken), cancellationToken);

    /// <summary>Closes the connections when this client built its own channel; a no-op for factory-made clients.</summary>
    public void Dispose() => _channel?.Dispose();

    private CallOptions Unary(CancellationToken cancellationToken, string? dpopMethod = null) =>
        new(headers: dpopMethod is null ? null : DpopHeaders(dpopMethod), deadline: DateTime.UtcNow + Timeout, cancellationToken: cancellationToken);

    /// <summary>
    /// An AgentBroker call with a fresh DPoP proof (when <see cref="DpopKey"/> is set). The channel's
    /// transparent retry of UNAVAILABLE re-sends the same headers, so a first attempt the broker had
    /// already recorded makes the retry a replay: that DPOP_REPLAY is answered with one new attempt and a new proof.
    /// </summary>
    private async Task<T> WithProofAsync<T>(Func<CallOptions, AsyncUnaryCall<T>> call, string method, CancellationToken cancellationToken)
    {
        try
        {
            return await call(Unary(cancellationToken, method)).ResponseAsync;
        }
        catch (RpcException e) when (DpopKey is not null && e.StatusCode == StatusCode.Unauthenticated && e.ErrorInfo?.Reason == "DPOP_REPLAY")
        {
            return await call(Unary(cancellationToken, method)).ResponseAsync;
        }
    }

    /// <summary>The <c>dpop</c> metadata for one AgentBroker call (a new proof every call: the broker refuses a replayed one).</summary>
    private Metadata? DpopHeaders(string method)
    {
        if (DpopKey is not { } key)
        {
            return null;
        }

        var target = DpopUri ?? throw new InvalidOperationException("DpopUri is required with DpopKey when the client was built from generated clients.");
        var proof = key.CreateProof("POST", new Uri(target.AbsoluteUri.TrimEnd('/') + "/credbroker.v1.AgentBroker/" + method));
        return [new Metadata.Entry("dpop", proof)];
    }

    internal static async IAsyncEnumerable<T> Stream<T>(AsyncServerStreamingCall<T> call, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using (call)
        {
            await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                yield return message;
            }
        }
    }
}
