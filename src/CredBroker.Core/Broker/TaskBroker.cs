using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Delegation;
using CredBroker.Core.Leases;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.Rules;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

/// <summary>
/// The broker's use cases: begin a task (policy → lease → token), mint more tokens inside it,
/// renew it, complete it, and introspect tokens. Knows nothing of hosts or stores. Every decision
/// and lease change is raised as an audit event before the caller gets its answer (a token is
/// returned only once its mint is in the audit chain).
/// </summary>
public sealed partial class TaskBroker(
    IAgentCatalog agents, IIssuancePolicy policy, ILeaseStore store, TokenMinter minter, TokenReader reader, TimeProvider time, IAuditEvents audit,
    ISubjectTokenValidator? userTokens = null, DelegationOptions? delegationOptions = null)
{
    private readonly DelegationResolver _delegations = new(userTokens ?? NoUserTokenIssuers.Instance, reader, store, agents, delegationOptions ?? new(), time);
    private readonly DelegationCascade _cascade = new(store, time);
    private readonly MintPath _mint = new(minter, audit, time);

    /// <summary>The one mint path (bound to the caller, audited before return), shared with <see cref="ApprovalDesk"/>.</summary>
    internal MintPath Mint => _mint;

    /// <summary>Request-time policy with the agent's holdings and denial-burst detection.</summary>
    public PolicyGate Policy { get; } = new(policy, store, time, new LeaseAdministration(store, time, audit, agents));

    /// <summary>
    /// Opens the task's lease and mints its first token, or, when policy requires a human, opens it
    /// as pending approval (no token; <see cref="TaskStart.Token"/> is null and the lease id is the
    /// approval id). Repeating the call after approval returns the approved lease with a token.
    /// </summary>
    public async Task<TaskStart> BeginTaskAsync(CallerIdentity caller, BeginTaskCommand command, CancellationToken cancellationToken)
    {
        RequestValidator.TaskId(command.TaskId);
        RequestValidator.Purpose(command.Purpose);
        RequestValidator.Scopes(command.Scopes, required: true);
        RequestValidator.Audience(command.Audience);
        RequestValidator.Duration(command.Ttl, "ttl");
        RequestValidator.Context(command.Context);
        var agent = agents.Find(caller.AgentId) ?? throw await DeniedAsync(caller, null, command, UnknownAgent(caller), cancellationToken);
        IReadOnlyList<ContextLabel> context;
        try
        {
            context = GrantedContext.Resolve(Policy.Policy, command.Context, caller.Claims);
        }
        catch (BrokerException refusal)
        {
            throw await DeniedAsync(caller, agent, command, refusal, cancellationToken);
        }

        command = command with { Context = GrantedContext.Values(context) };
        DelegationPlan delegation;
        try
        {
            delegation = await _delegations.ResolveAsync(agent, command.SubjectToken, cancellationToken);
        }
        catch (BrokerException refusal) when (refusal.Kind == BrokerErrorKind.PermissionDenied)
        {
            throw await DeniedAsync(caller, agent, command, refusal, cancellationToken);
        }

        command = delegation.Narrow(command, time.GetUtcNow());
        var decision = await Policy.DecideAsync(agent, new TaskRequest(
            agent.Id, command.TaskId, command.Purpose, command.Scopes, command.Audience, command.Ttl, command.Context), cancellationToken);
        if (decision.Outcome == DecisionOutcome.Deny)
        {
            throw await DeniedAsync(caller, agent, command, new BrokerException(BrokerErrorKind.PermissionDenied, decision.Reason, decision.RuleIds), cancellationToken);
        }

        if (SenderConstraintRefusal(caller, agent, decision.GrantedScopes, lease: null) is { } unbound)
        {
            throw await DeniedAsync(caller, agent, command, unbound, cancellationToken);
        }

        var pending = decision.Outcome == DecisionOutcome.RequireApproval;

        // Stores keep milliseconds; start from a whole millisecond so a replayed BeginTask answers identically.
        var now = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
        var lifetime = decision.MaxLeaseLifetime is { } cap && cap < agent.MaxLeaseLifetime ? cap : agent.MaxLeaseLifetime;
        var approvalTimeout = Policy.Policy.Settings.ApprovalTimeout;
        var lease = delegation.Shape(new Lease
        {
            LeaseId = LeaseIds.For(agent.Id, command.TaskId),
            AgentId = agent.Id,
            TaskId = command.TaskId,
            Owner = agent.Owner,
            Purpose = command.Purpose.Length > 0 ? command.Purpose : agent.Purpose,
            Audience = decision.Audience,
            Scopes = decision.GrantedScopes,
            Context = context,
            State = pending ? LeaseState.PendingApproval : LeaseState.Active,
            CreatedAt = now,
            // A pending lease's deadline is when its approval expires; approval starts the task's ttl.
            Deadline = now + (!pending ? decision.LeaseTtl : approvalTimeout < lifetime ? approvalTimeout : lifetime),
            MaxDeadline = now + lifetime,
            DpopKeyThumbprint = caller.DpopKeyThumbprint,
            Approval = pending ? new LeaseApproval
            {
                RequestedScopes = decision.GrantedScopes,
                ApprovalScopes = decision.ApprovalScopes,
                LeaseTtl = decision.LeaseTtl,
                Reason = decision.Reason,
                RuleIds = decision.RuleIds,
            } : null,
        });

        // The lease is durable before any token exists: no token without a lease.
        // Toxic combinations across the agent's tasks are checked again by the store, atomically with the write:
        // the policy's look at the holdings above and this open are two steps, and concurrent BeginTasks race between them.
        var quota = new LeaseQuota(agent.MaxConcurrentLeases, agent.MaxTasksPerMinute, TimeSpan.FromMinutes(1))
        {
            ToxicGuards = ToxicCombinationRule.AgentWideGuards(Policy.Policy, lease.Scopes),
        };
        var opened = await _delegations.OpenAsync(delegation, lease, () => StoreCall.Run(() => store.OpenAsync(lease, quota, cancellationToken)), cancellationToken);
        if (opened.Lease is null)
        {
            throw await DeniedAsync(caller, agent, command, Refused(agent.Id, opened, Policy.Policy), cancellationToken);
        }

        if (!opened.Created)
        {
            // A repeated BeginTask answers only to the key the lease was opened with.
            RequireLeaseKey(caller, opened.Lease);
            lease = ResumeExisting(opened.Lease, decision, now);
        }

        if (lease.State == LeaseState.PendingApproval)
        {
            await audit.RaiseAsync(LeaseEvent(AuditEventType.ApprovalRequested, caller, lease) with
            {
                ScopesRequested = command.Scopes, RuleIds = decision.RuleIds, Reason = decision.Reason,
            }, cancellationToken);
            return new TaskStart(lease, null, decision);
        }

        var token = await _mint.MintAsync(caller, lease, agent, lease.Scopes, lease.Audience, command.Scopes, decision.RuleIds,
            opened.Created ? "begin_task" : "begin_task.replay", cancellationToken);
        return new TaskStart(lease, token, decision);
    }

    public async Task<TaskGrant> IssueTokenAsync(CallerIdentity caller, string leaseId, IReadOnlyList<string> scopes, string audience, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(leaseId);
        RequestValidator.Scopes(scopes, required: false);
        RequestValidator.Audience(audience);
        var agent = FindAgent(caller);
        var lease = await OwnLeaseAsync(caller, leaseId, cancellationToken);
        RequireActive(lease, time.GetUtcNow());
        RequireLeaseKey(caller, lease);

        var granted = scopes.Count == 0 ? lease.Scopes : scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (granted.FirstOrDefault(s => !lease.Scopes.Contains(s, StringComparer.Ordinal)) is { } extra)
        {
            throw await DeniedAsync(caller, lease, scopes, new BrokerException(BrokerErrorKind.PermissionDenied,
                $"Scope '{extra}' is not held by lease {leaseId} (it holds: {string.Join(' ', lease.Scopes)}); tokens inside a lease can only narrow it.",
                ["lease.scope_subset"]), cancellationToken);
        }

        var targetAudience = audience.Length == 0 ? lease.Audience : audience;
        // The broker itself as audience: a delegation token (subject_token for a sub-agent), which no API accepts.
        var delegation = targetAudience == reader.Issuer;
        if (!delegation && !agent.Audiences.Contains(targetAudience, StringComparer.Ordinal))
        {
            throw await DeniedAsync(caller, lease, scopes, new BrokerException(BrokerErrorKind.PermissionDenied,
                $"Audience '{targetAudience}' is not one of agent '{agent.Id}''s audiences ({string.Join(", ", agent.Audiences)}).", ["agent.audience"]), cancellationToken);
        }

        if (lease.ParentLeaseIds.Count > 0 && targetAudience != lease.Audience && !delegation)
        {
            throw await DeniedAsync(caller, lease, scopes, new BrokerException(BrokerErrorKind.PermissionDenied,
                $"Lease {leaseId} was delegated from a parent token for audience '{lease.Audience}'; its tokens stay with that audience.", ["delegation.parent_audience"]), cancellationToken);
        }

        if (SenderConstraintRefusal(caller, agent, granted, lease) is { } unbound)
        {
            throw await DeniedAsync(caller, lease, scopes, unbound, cancellationToken);
        }

        var token = await _mint.MintAsync(caller, lease, agent, granted, targetAudience, scopes, [], delegation ? "issue_token.delegation" : "issue_token", cancellationToken);
        return new TaskGrant(lease, token);
    }

    public async Task<TaskGrant> RenewLeaseAsync(CallerIdentity caller, string leaseId, TimeSpan? extendBy, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(leaseId);
        RequestValidator.Duration(extendBy, "extend_by");
        var agent = FindAgent(caller);
        var lease = await OwnLeaseAsync(caller, leaseId, cancellationToken);
        var now = time.GetUtcNow();
        RequireActive(lease, now);
        RequireLeaseKey(caller, lease);
        if (SenderConstraintRefusal(caller, agent, lease.Scopes, lease) is { } unbound)
        {
            throw unbound;
        }

        var renewed = await StoreCall.Run(() => store.RenewAsync(leaseId, now + (extendBy ?? agent.DefaultLeaseTtl), now, expectedGeneration: null, cancellationToken));
        var current = renewed.Lease ?? throw NotFound(leaseId);
        RequireActive(current, now);
        var token = await _mint.RenewAsync(caller, current, agent, minted => Renewed(caller, current, minted), cancellationToken);
        return new TaskGrant(current, token);
    }

    /// <summary>
    /// Ends the lease. Idempotent: completing an ended lease reports the state it ended in. One store
    /// call: the store checks the lease is the caller's (another agent's lease is not found and untouched)
    /// and returns its delegated children with it.
    /// </summary>
    public async Task<Lease> CompleteTaskAsync(CallerIdentity caller, string leaseId, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(leaseId);
        if (!LeaseIds.TryGetShard(leaseId, out _))
        {
            throw NotFound(leaseId);
        }

        var result = await StoreCall.Run(() => store.CompleteAsync(leaseId, caller.AgentId, time.GetUtcNow(), expectedGeneration: null, cancellationToken));
        var ended = result.Lease ?? throw NotFound(leaseId);
        await _cascade.EndDescendantsAsync(ended, result.Children, cancellationToken);
        await audit.RaiseAsync(Completed(caller, ended, result.Outcome == TransitionOutcome.Applied), cancellationToken);
        return ended;
    }

    /// <summary>RFC 7662: active only for a valid token whose lease is active right now.</summary>
    public async Task<IntrospectionResult> IntrospectAsync(string token, CancellationToken cancellationToken)
    {
        if (reader.Read(token) is not { } claims)
        {
            return IntrospectionResult.Inactive;
        }

        var lease = await StoreCall.Run(() => store.GetAsync(claims.LeaseId, cancellationToken));
        var active = lease is not null && lease.AgentId == claims.ClientId && lease.StateAt(time.GetUtcNow()) == LeaseState.Active
            && await _delegations.AncestorsActiveAsync(claims.ParentLeaseIds, cancellationToken);
        return active ? new IntrospectionResult(true, claims) : IntrospectionResult.Inactive;
    }

    private AgentDefinition FindAgent(CallerIdentity caller) => agents.Find(caller.AgentId) ?? throw UnknownAgent(caller);

    private static BrokerException UnknownAgent(CallerIdentity caller) => new(BrokerErrorKind.PermissionDenied,
        $"No agent definition for '{caller.AgentId}': an agent must be defined (owner, purpose, scopes) before it gets tokens.",
        ["agent.defined"]);

    /// <summary>A lease of another agent is reported as not found, so lease ids leak nothing.</summary>
    private async Task<Lease> OwnLeaseAsync(CallerIdentity caller, string leaseId, CancellationToken cancellationToken)
    {
        if (!LeaseIds.TryGetShard(leaseId, out _))
        {
            throw NotFound(leaseId);
        }

        var lease = await StoreCall.Run(() => store.GetAsync(leaseId, cancellationToken));
        return lease is not null && lease.AgentId == caller.AgentId ? lease : throw NotFound(leaseId);
    }

    private static Lease ResumeExisting(Lease existing, Decision decision, DateTimeOffset now)
    {
        // A lease that went through approval is compared with what was asked (an approver may have narrowed it).
        var asked = existing.Approval?.RequestedScopes ?? existing.Scopes;
        if (!asked.SequenceEqual(decision.GrantedScopes, StringComparer.Ordinal) || existing.Audience != decision.Audience)
        {
            throw new BrokerException(BrokerErrorKind.AlreadyExists,
                $"task_id '{existing.TaskId}' already has lease {existing.LeaseId} with scopes [{string.Join(' ', existing.Scopes)}] for audience '{existing.Audience}'; " +
                "repeat the original request, or use a new task_id for a different one.");
        }

        if (existing.StateAt(now) == LeaseState.PendingApproval)
        {
            return existing;
        }

        RequireActive(existing, now);
        return existing;
    }

    private static void RequireActive(Lease lease, DateTimeOffset now)
    {
        var state = lease.StateAt(now);
        if (state == LeaseState.PendingApproval)
        {
            throw new BrokerException(BrokerErrorKind.FailedPrecondition,
                $"Lease {lease.LeaseId} for task '{lease.TaskId}' is waiting for human approval (approval id {lease.LeaseId}); follow it with WatchApproval.", ["agent.approval"]);
        }

        if (state != LeaseState.Active)
        {
            throw new BrokerException(BrokerErrorKind.FailedPrecondition,
                $"Lease {lease.LeaseId} for task '{lease.TaskId}' is {state.ToWire()}, not active; begin a new task with a new task_id.");
        }
    }

    private static BrokerException Refused(string agentId, LeaseOpenResult refused, PolicyDocument policy) => refused.Refusal switch
    {
        OpenRefusal.ToxicCombination => ToxicAcrossTasks(refused.RuleId ?? "toxic", policy),
        OpenRefusal.Quarantined => new(BrokerErrorKind.PermissionDenied,
            $"Agent '{agentId}' is quarantined (by an operator, or by policy after a burst of denials); no lease or token is issued until an operator releases it.", ["agent.quarantined"]),
        OpenRefusal.ConcurrencyLimit => new(BrokerErrorKind.ResourceExhausted,
            $"Agent '{agentId}' holds its maximum number of open leases (max_concurrent_leases); complete a task first.", ["lease.quota.concurrent"])
        {
            RetryAfter = refused.RetryAfter,
        },
        _ => new(BrokerErrorKind.ResourceExhausted,
            $"Agent '{agentId}' started its maximum number of tasks this minute (max_tasks_per_minute); retry after {(refused.RetryAfter ?? TimeSpan.FromSeconds(1)).TotalSeconds:0.###} s.", ["lease.quota.rate"])
        {
            RetryAfter = refused.RetryAfter ?? TimeSpan.FromSeconds(1),
        },
    };

    /// <summary>The store's refusal of a lease that would complete a toxic combination with the agent's other leases: a policy denial.</summary>
    private static BrokerException ToxicAcrossTasks(string ruleId, PolicyDocument policy)
    {
        var combination = policy.ToxicCombinations.FirstOrDefault(c => c.RuleId == ruleId);
        var what = combination is null ? ruleId : string.Join(" + ", combination.Scopes.Select(s => s.Text));
        var why = combination is { Description.Length: > 0 } ? $" ({combination.Description})" : string.Empty;
        return new(BrokerErrorKind.PermissionDenied,
            $"The requested scopes together with what this agent holds in another active task form a forbidden combination: {what}{why}; complete that task first.",
            [ruleId]);
    }

    private static BrokerException NotFound(string leaseId) =>
        new(BrokerErrorKind.NotFound, $"Lease '{leaseId}' not found for this agent.");
}
