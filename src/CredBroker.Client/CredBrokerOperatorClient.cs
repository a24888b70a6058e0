using System.Security.Cryptography.X509Certificates;
using CredBroker.Contracts.V1;
using CredBroker.Grpc;
using Google.Protobuf;

namespace CredBroker.Client;

/// <summary>The Operator service on the operator listener (leases, agents, signing keys, audit). Failures surface as <see cref="RpcException"/>.</summary>
public sealed class CredBrokerOperatorClient : IDisposable
{
    private const string Operator = "/credbroker.v1.Operator/";

    private readonly BrokerChannel _channel;

    /// <param name="address">The operator listener, e.g. <c>http://127.0.0.1:5402</c>.</param>
    /// <param name="credential">Returns the operator's current credential.</param>
    public CredBrokerOperatorClient(Uri address, Func<string> credential, X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null) =>
        _channel = new BrokerChannel(address, credential, clientCertificate, trustedRoot);

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

    /// <param name="kid">A mounted key's kid, or empty for the next unused one.</param>
    public Task<RotateSigningKeyResponse> RotateSigningKeyAsync(string kid, string reason, CancellationToken cancellationToken = default) =>
        Call("RotateSigningKey", new RotateSigningKeyRequest { Kid = kid, Reason = reason }, RotateSigningKeyResponse.Parser, cancellationToken);

    /// <summary>Audit records matching the filters; with <c>Follow</c> the stream stays open until cancelled.</summary>
    public IAsyncEnumerable<AuditRecord> QueryAuditAsync(QueryAuditRequest request, CancellationToken cancellationToken = default) =>
        _channel.ServerStreamingAsync(Operator + "QueryAudit", request, AuditRecord.Parser, cancellationToken);

    /// <summary>Checks the audit chain; <paramref name="timeout"/> defaults to a minute (a long chain takes a while).</summary>
    public Task<VerifyAuditResponse> VerifyAuditAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _channel.UnaryAsync(Operator + "VerifyAudit", new VerifyAuditRequest(), VerifyAuditResponse.Parser, timeout ?? TimeSpan.FromMinutes(1), cancellationToken);

    public Task<ListApprovalsResponse> ListApprovalsAsync(ListApprovalsRequest request, CancellationToken cancellationToken = default) =>
        Call("ListApprovals", request, ListApprovalsResponse.Parser, cancellationToken);

    public Task<DecideApprovalResponse> DecideApprovalAsync(DecideApprovalRequest request, CancellationToken cancellationToken = default) =>
        Call("DecideApproval", request, DecideApprovalResponse.Parser, cancellationToken);

    public Task<ReloadPolicyResponse> ReloadPolicyAsync(CancellationToken cancellationToken = default) =>
        Call("ReloadPolicy", new ReloadPolicyRequest(), ReloadPolicyResponse.Parser, cancellationToken);

    public Task<AnalyzePolicyResponse> AnalyzePolicyAsync(string candidateYaml = "", CancellationToken cancellationToken = default) =>
        Call("AnalyzePolicy", new AnalyzePolicyRequest { CandidateYaml = candidateYaml }, AnalyzePolicyResponse.Parser, cancellationToken);

    public Task<ExplainDecisionResponse> ExplainDecisionAsync(ExplainDecisionRequest request, CancellationToken cancellationToken = default) =>
        Call("ExplainDecision", request, ExplainDecisionResponse.Parser, cancellationToken);

    public void Dispose() => _channel.Dispose();

    private Task<TResponse> Call<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        _channel.UnaryAsync(Operator + method, request, parser, Timeout, cancellationToken);
}
