using System.Security.Cryptography.X509Certificates;
using CredBroker.Contracts.V1;
using CredBroker.Grpc;
using Google.Protobuf;

namespace CredBroker.Client;

/// <summary>The Operator service on the operator listener (leases and agents). Failures surface as <see cref="RpcException"/>.</summary>
public sealed class CredBrokerOperatorClient : IDisposable
{
    private const string Operator = "/credbroker.v1.Operator/";

    private readonly HttpClient _http;
    private readonly GrpcClient _grpc;
    private readonly Func<string> _credential;

    /// <param name="address">The operator listener, e.g. <c>http://127.0.0.1:5402</c>.</param>
    /// <param name="credential">Returns the operator's current credential.</param>
    public CredBrokerOperatorClient(Uri address, Func<string> credential, X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null)
    {
        _http = GrpcClient.CreateHttpClient(clientCertificate, trustedRoot);
        _grpc = new GrpcClient(_http, address);
        _credential = credential;
    }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    public Task<ListLeasesResponse> ListLeasesAsync(ListLeasesRequest request, CancellationToken cancellationToken = default) =>
        Call("ListLeases", request, ListLeasesResponse.Parser, cancellationToken);

    public Task<Lease> GetLeaseAsync(string leaseId, CancellationToken cancellationToken = default) =>
        Call("GetLease", new GetLeaseRequest { LeaseId = leaseId }, Lease.Parser, cancellationToken);

    public Task<RevokeLeaseResponse> RevokeLeaseAsync(string leaseId, string reason, CancellationToken cancellationToken = default) =>
        Call("RevokeLease", new RevokeLeaseRequest { LeaseId = leaseId, Reason = reason }, RevokeLeaseResponse.Parser, cancellationToken);

    public Task<RevokeLeaseResponse> RevokeTaskAsync(string agentId, string taskId, string reason, CancellationToken cancellationToken = default) =>
        Call("RevokeTask", new RevokeTaskRequest { AgentId = agentId, TaskId = taskId, Reason = reason }, RevokeLeaseResponse.Parser, cancellationToken);

    public Task<QuarantineAgentResponse> QuarantineAgentAsync(string agentId, string reason, CancellationToken cancellationToken = default) =>
        Call("QuarantineAgent", new QuarantineAgentRequest { AgentId = agentId, Reason = reason }, QuarantineAgentResponse.Parser, cancellationToken);

    public Task<ReleaseAgentResponse> ReleaseAgentAsync(string agentId, CancellationToken cancellationToken = default) =>
        Call("ReleaseAgent", new ReleaseAgentRequest { AgentId = agentId }, ReleaseAgentResponse.Parser, cancellationToken);

    public void Dispose() => _http.Dispose();

    // Every operator call is idempotent (revocations of ended leases report their state), so UNAVAILABLE is retried.
    private Task<TResponse> Call<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        _grpc.UnaryAsync(Operator + method, request, parser, new CallOptions
        {
            Metadata = new Metadata { { "authorization", "Bearer " + _credential() } },
            Timeout = Timeout,
            CancellationToken = cancellationToken,
            Idempotent = true,
        });
}
