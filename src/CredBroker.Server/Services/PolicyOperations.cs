using CredBroker.Contracts.V1;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Server.Rpc;
using Grpc.Core;
using Google.Protobuf.WellKnownTypes;
using AuditEvent = CredBroker.Core.Audit.AuditEvent;
using Lease = CredBroker.Core.Leases.Lease;
using PolicyError = CredBroker.Core.Policy.File.PolicyError;
using PolicyFinding = CredBroker.Core.Policy.PolicyFinding;

namespace CredBroker.Server.Services;

/// <summary>credbroker.v1.Operator, approvals and policy (issue 5): registered next to <see cref="OperatorService"/>.</summary>
public sealed class PolicyOperations(PolicyHolder policy, PolicyGate gate, ApprovalDesk approvals, IAuditEvents audit, TimeProvider time, PartialListings partial)
{
    private const int MaxCandidateBytes = 1024 * 1024;

    public static Approval ToWire(Lease lease, DateTimeOffset now)
    {
        var approval = lease.Approval!;
        var state = ApprovalDesk.StateOf(lease, now);
        var wire = new Approval
        {
            ApprovalId = lease.LeaseId,
            AgentId = lease.AgentId,
            TaskId = lease.TaskId,
            Owner = lease.Owner,
            Purpose = lease.Purpose,
            Audience = lease.Audience,
            RequestedScopes = { approval.RequestedScopes },
            ApprovalScopes = { approval.ApprovalScopes },
            Reason = approval.Reason,
            RuleIds = { approval.RuleIds },
            RequestedAt = Timestamp.FromDateTimeOffset(lease.CreatedAt),
            State = state.ToString().ToLowerInvariant(),
            DecidedBy = approval.DecidedBy ?? string.Empty,
            Note = approval.Note ?? string.Empty,
        };
        if (state == ApprovalState.Pending)
        {
            wire.ExpiresAt = Timestamp.FromDateTimeOffset(lease.Deadline);
        }

        if (state == ApprovalState.Approved)
        {
            wire.GrantedScopes.Add(lease.Scopes);
        }

        return wire;
    }

    public async Task<ListApprovalsResponse> ListApprovalsAsync(ListApprovalsRequest request, ServerCallContext context)
    {
        var page = await approvals.ListAsync(
            request.AgentId.Length > 0 ? request.AgentId : null, request.PageSize == 0 ? 100 : request.PageSize,
            request.PageToken.Length > 0 ? request.PageToken : null, context.CancellationToken);
        var now = time.GetUtcNow();
        var response = new ListApprovalsResponse { NextPageToken = page.NextPageToken ?? string.Empty, UnreachableShards = { partial.Observe("ListApprovals", page, wholeListing: request.AgentId.Length == 0 && request.PageToken.Length == 0) } };
        response.Approvals.AddRange(page.Leases.Where(l => l.Approval is not null).Select(l => ToWire(l, now)));
        return response;
    }

    public async Task<DecideApprovalResponse> DecideApprovalAsync(DecideApprovalRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var lease = request.Verdict switch
        {
            DecideApprovalRequest.Types.Verdict.Approve => await approvals.ApproveAsync(request.ApprovalId, request.Scopes, actor, request.Reason, context.CancellationToken),
            DecideApprovalRequest.Types.Verdict.Deny when request.Scopes.Count > 0 =>
                throw RpcErrors.Create(StatusCode.InvalidArgument, "scopes narrow an approval; a denial takes none (give a reason)."),
            DecideApprovalRequest.Types.Verdict.Deny => await approvals.DenyAsync(request.ApprovalId, request.Reason, actor, context.CancellationToken),
            _ => throw RpcErrors.Create(StatusCode.InvalidArgument, "verdict is required: APPROVE (optionally with scopes to narrow to) or DENY (with a reason)."),
        };
        return new DecideApprovalResponse { Approval = ToWire(lease, time.GetUtcNow()) };
    }

    /// <summary>The <see cref="AuditEventType.PolicyReloaded"/> event for a reload (by an operator, or by the file watcher when <paramref name="actor"/> is empty).</summary>
    public static AuditEvent Reloaded(PolicyReloadResult result, string actor, int agents) => new()
    {
        Type = AuditEventType.PolicyReloaded,
        Time = result.LoadedAt,
        Operator = actor,
        Caller = actor.Length == 0 ? "policy-file-watcher" : "",
        Reason = result.Applied ? "" : string.Join("\n", result.Errors.Take(20)),
        Details = new Dictionary<string, string>
        {
            ["applied"] = result.Applied ? "true" : "false",
            ["version"] = result.Version,
            ["errors"] = result.Errors.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["agents"] = agents.ToString(System.Globalization.CultureInfo.InvariantCulture),
        },
    };

    public async Task<ReloadPolicyResponse> ReloadPolicyAsync(ReloadPolicyRequest request, ServerCallContext context)
    {
        var actor = CallGuard.Caller(context).Subject;
        var result = policy.Reload();
        await audit.RaiseAsync(Reloaded(result, actor, policy.Current.Agents.All.Count), context.CancellationToken);
        var response = new ReloadPolicyResponse
        {
            Applied = result.Applied,
            Version = policy.Current.Version,
            LoadedAt = Timestamp.FromDateTimeOffset(policy.LoadedAt),
            Agents = policy.Current.Agents.All.Count,
        };
        response.Errors.AddRange(result.Errors.Select(ToWire));
        return response;
    }

    public Task<AnalyzePolicyResponse> AnalyzePolicyAsync(AnalyzePolicyRequest request, ServerCallContext context)
    {
        if (request.CandidateYaml.Length > MaxCandidateBytes)
        {
            throw RpcErrors.Create(StatusCode.ResourceExhausted, $"candidate_yaml is limited to {MaxCandidateBytes} bytes.");
        }

        IReadOnlyList<PolicyFinding> findings;
        string version;
        if (request.CandidateYaml.Length == 0)
        {
            (findings, version) = (PolicyAnalyzer.Analyze(policy.Current), policy.Current.Version);
        }
        else
        {
            try
            {
                var candidate = PolicyFile.Parse(request.CandidateYaml, "candidate");
                (findings, version) = (PolicyAnalyzer.Analyze(candidate), candidate.Version);
            }
            catch (PolicyLimitException e)
            {
                throw RpcErrors.Create(StatusCode.InvalidArgument, $"candidate_yaml: {e.Errors[0]}");
            }
            catch (PolicyFileException e)
            {
                (findings, version) = (PolicyAnalyzer.FromErrors(e.Errors), string.Empty);
            }
        }

        var response = new AnalyzePolicyResponse { Version = version };
        response.Findings.AddRange(findings.Select(f => new Contracts.V1.PolicyFinding { Kind = f.Kind, AgentId = f.AgentId, RuleId = f.RuleId, Detail = f.Detail }));
        return Task.FromResult(response);
    }

    public async Task<ExplainDecisionResponse> ExplainDecisionAsync(ExplainDecisionRequest request, ServerCallContext context)
    {
        if (!Core.Broker.Syntax.AgentId().IsMatch(request.AgentId))
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "agent_id must be 1-64 characters of lower-case letters, digits, '.', '_' or '-'.");
        }

        if (request.Scopes.Count > Core.Broker.Syntax.MaxScopesPerRequest || request.Context.Count > Core.Broker.Syntax.MaxContextLabels)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, $"at most {Core.Broker.Syntax.MaxScopesPerRequest} scopes and {Core.Broker.Syntax.MaxContextLabels} context labels.");
        }

        var ttl = request.Ttl is null ? (TimeSpan?)null : request.Ttl.ToTimeSpan();
        if (ttl is { } t && t <= TimeSpan.Zero)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "ttl must be positive when given.");
        }

        var holdings = request.IncludeHoldings
            ? await gate.HoldingsAsync(request.AgentId, null, context.CancellationToken)
            : [];
        // Explanations are for operators: unlike an agent's error, they may show every rule.
        var decision = policy.Explain(new TaskRequest(request.AgentId, "explain", string.Empty, request.Scopes, request.Audience, ttl, request.Context) { Holdings = holdings });
        var response = new ExplainDecisionResponse
        {
            Outcome = decision.Outcome switch { DecisionOutcome.Allow => "allow", DecisionOutcome.Deny => "deny", _ => "require_approval" },
            RuleIds = { decision.RuleIds },
            Reason = decision.Reason,
            GrantedScopes = { decision.GrantedScopes },
            DroppedScopes = { decision.DroppedScopes },
            ApprovalScopes = { decision.ApprovalScopes },
            Audience = decision.Audience,
            LeaseTtl = Duration.FromTimeSpan(decision.LeaseTtl),
            PolicyVersion = policy.Current.Version,
        };
        response.Steps.AddRange(decision.Steps.Select(s => new Contracts.V1.DecisionStep { RuleId = s.RuleId, Effect = s.Effect, Detail = s.Detail }));
        return response;
    }

    private static Contracts.V1.PolicyError ToWire(PolicyError error) => new()
    {
        File = error.Source,
        Line = error.Line,
        Column = error.Column,
        Field = error.Field,
        Message = error.Message,
    };
}
