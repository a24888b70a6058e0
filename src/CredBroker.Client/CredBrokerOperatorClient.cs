using System.Security.Cryptography.X509Certificates;
using CredBroker.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace CredBroker.Client;

/// <summary>
/// The Operator service on the operator listener (leases, agents, approvals, policy, signing keys,
/// audit), on the generated Grpc.Net.Client client. Failures surface as <see cref="RpcException"/>.
/// </summary>
public sealed class CredBrokerOperatorClient : IDisposable
{
    private readonly GrpcChannel _channel;

    /// <param name="address">The operator listener, e.g. <c>http://127.0.0.1:5402</c>.</param>
    /// <param name="credential">Returns the operator's current credential (re-read per call).</param>
    public CredBrokerOperatorClient(Uri address, Func<string> credential, X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null)
        : this(address, BrokerChannel.FromSync(credential), clientCertificate, trustedRoot)
    {
    }

    /// <param name="address">The operator listener, e.g. <c>http://127.0.0.1:5402</c>.</param>
    /// <param name="credential">Returns the operator's current credential, asked on every call.</param>
    public CredBrokerOperatorClient(Uri address, Func<CancellationToken, ValueTask<string>> credential, X509Certificate2? clientCertificate = null,
        X509Certificate2? trustedRoot = null, RetrySettings? retry = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(credential);
        _channel = BrokerChannel.Create(address, credential, clientCertificate, trustedRoot, retry);
        Operator = new Operator.OperatorClient(_channel);
    }

    /// <summary>Per-call timeout, sent as the gRPC deadline (retries of UNAVAILABLE happen within it).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The channel (TLS settings, credential, retries), for other services on the operator listener such as grpc.health.v1.</summary>
    public GrpcChannel Channel => _channel;

    /// <summary>The generated Operator client, for calls that need their own <see cref="CallOptions"/>.</summary>
    public Operator.OperatorClient Operator { get; }

    public Task<ListLeasesResponse> ListLeasesAsync(ListLeasesRequest request, CancellationToken cancellationToken = default) =>
        Operator.ListLeasesAsync(request, Unary(cancellationToken)).ResponseAsync;

    public Task<Lease> GetLeaseAsync(string leaseId, CancellationToken cancellationToken = default) =>
        Operator.GetLeaseAsync(new GetLeaseRequest { LeaseId = leaseId }, Unary(cancellationToken)).ResponseAsync;

    public Task<RevokeLeaseResponse> RevokeLeaseAsync(string leaseId, string reason, CancellationToken cancellationToken = default) =>
        Operator.RevokeLeaseAsync(new RevokeLeaseRequest { LeaseId = leaseId, Reason = reason }, Unary(cancellationToken)).ResponseAsync;

    public Task<RevokeLeaseResponse> RevokeTaskAsync(string agentId, string taskId, string reason, CancellationToken cancellationToken = default) =>
        Operator.RevokeTaskAsync(new RevokeTaskRequest { AgentId = agentId, TaskId = taskId, Reason = reason }, Unary(cancellationToken)).ResponseAsync;

    public Task<QuarantineAgentResponse> QuarantineAgentAsync(string agentId, string reason, CancellationToken cancellationToken = default) =>
        Operator.QuarantineAgentAsync(new QuarantineAgentRequest { AgentId = agentId, Reason = reason }, Unary(cancellationToken)).ResponseAsync;

    public Task<ReleaseAgentResponse> ReleaseAgentAsync(string agentId, CancellationToken cancellationToken = default) =>
        Operator.ReleaseAgentAsync(new ReleaseAgentRequest { AgentId = agentId }, Unary(cancellationToken)).ResponseAsync;

    /// <param name="kid">A mounted key's kid, or empty for the next unused one.</param>
    public Task<RotateSigningKeyResponse> RotateSigningKeyAsync(string kid, string reason, CancellationToken cancellationToken = default) =>
        Operator.RotateSigningKeyAsync(new RotateSigningKeyRequest { Kid = kid, Reason = reason }, Unary(cancellationToken)).ResponseAsync;

    /// <summary>Audit records matching the filters; with <c>Follow</c> the stream stays open until cancelled.</summary>
    public IAsyncEnumerable<AuditRecord> QueryAuditAsync(QueryAuditRequest request, CancellationToken cancellationToken = default) =>
        CredBrokerClient.Stream(Operator.QueryAudit(request, cancellationToken: cancellationToken), cancellationToken);

    /// <summary>Checks the audit chain; <paramref name="timeout"/> defaults to a minute (a long chain takes a while).</summary>
    public Task<VerifyAuditResponse> VerifyAuditAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Operator.VerifyAuditAsync(new VerifyAuditRequest(), Unary(cancellationToken, timeout ?? TimeSpan.FromMinutes(1))).ResponseAsync;

    public Task<ListApprovalsResponse> ListApprovalsAsync(ListApprovalsRequest request, CancellationToken cancellationToken = default) =>
        Operator.ListApprovalsAsync(request, Unary(cancellationToken)).ResponseAsync;

    public Task<DecideApprovalResponse> DecideApprovalAsync(DecideApprovalRequest request, CancellationToken cancellationToken = default) =>
        Operator.DecideApprovalAsync(request, Unary(cancellationToken)).ResponseAsync;

    public Task<ReloadPolicyResponse> ReloadPolicyAsync(CancellationToken cancellationToken = default) =>
        Operator.ReloadPolicyAsync(new ReloadPolicyRequest(), Unary(cancellationToken)).ResponseAsync;

    public Task<AnalyzePolicyResponse> AnalyzePolicyAsync(string candidateYaml = "", CancellationToken cancellationToken = default) =>
        Operator.AnalyzePolicyAsync(new AnalyzePolicyRequest { CandidateYaml = candidateYaml }, Unary(cancellationToken)).ResponseAsync;

    public Task<ExplainDecisionResponse> ExplainDecisionAsync(ExplainDecisionRequest request, CancellationToken cancellationToken = default) =>
        Operator.ExplainDecisionAsync(request, Unary(cancellationToken)).ResponseAsync;

    public void Dispose() => _channel.Dispose();

    private CallOptions Unary(CancellationToken cancellationToken, TimeSpan? timeout = null) =>
        new(deadline: DateTime.UtcNow + (timeout ?? Timeout), cancellationToken: cancellationToken);
}
