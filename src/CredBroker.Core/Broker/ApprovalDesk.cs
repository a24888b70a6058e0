using System.Runtime.CompilerServices;
using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.Rules;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

public enum ApprovalState
{
    Pending,
    Approved,
    Denied,
    Expired,

    /// <summary>The agent completed the task before anyone decided.</summary>
    Withdrawn,

    /// <summary>Ended otherwise while pending (e.g. the agent was quarantined).</summary>
    Revoked,
}

/// <summary>An approval as its watcher sees it; <see cref="Token"/> is set once, in the view that reports approval.</summary>
public sealed record ApprovalView(Lease Lease, ApprovalState State, MintedToken? Token);

/// <summary>
/// The intervention point. A request that needs a human is a lease in <c>pending_approval</c>; its
/// lease id is the approval id. Operators list and decide (approve, optionally narrowing the
/// scopes, or deny with a reason); the agent watches until a decision or the expiry (the pending
/// lease's deadline, ended by the sweeper like any other) and gets its token in the approved view.
/// </summary>
public sealed class ApprovalDesk(IAgentCatalog agents, PolicyGate gate, ILeaseStore store, TokenMinter minter, TimeProvider time, IAuditEvents audit)
{
    // The same mint path as BeginTask/IssueToken: the approved view's token is bound to the watcher and audited before it is sent.
    private readonly MintPath _mint = new(minter, audit, time);

    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How often a watcher re-reads the store (decisions made on other replicas); decisions here wake it at once.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    public static ApprovalState StateOf(Lease lease, DateTimeOffset now) => lease.Approval?.Approved switch
    {
        true => ApprovalState.Approved,
        false => lease.Approval.DecidedBy == lease.AgentId ? ApprovalState.Withdrawn : ApprovalState.Denied,
        null => lease.StateAt(now) switch
        {
            LeaseState.PendingApproval => ApprovalState.Pending,
            LeaseState.Expired => ApprovalState.Expired,
            _ => ApprovalState.Revoked,
        },
    };

    public async Task<LeasePage> ListAsync(string? agentId, int pageSize, string? pageToken, CancellationToken cancellationToken)
    {
        if (agentId is not null)
        {
            RequestValidator.AgentId(agentId);
        }

        var query = new LeaseQuery(agentId, null, LeaseState.PendingApproval, pageSize, pageToken);
        try
        {
            query.Validate();
        }
        catch (ArgumentException e)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, e.Message);
        }

        return await StoreCall.Run(() => store.ListLeasesAsync(query, time.GetUtcNow(), cancellationToken));
    }

    /// <summary>Approves with the lease's scopes, or only <paramref name="scopes"/> when given (a subset: approvals only narrow).</summary>
    public async Task<Lease> ApproveAsync(string approvalId, IReadOnlyList<string> scopes, string actor, string note, CancellationToken cancellationToken)
    {
        RequestValidator.Scopes(scopes, required: false);
        Note(note, required: false);
        var lease = await PendingAsync(approvalId, cancellationToken);
        var granted = scopes.Count == 0 ? lease.Scopes : scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (granted.FirstOrDefault(s => !lease.Scopes.Contains(s, StringComparer.Ordinal)) is { } extra)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument,
                $"Scope '{extra}' was not requested (requested: {string.Join(' ', lease.Scopes)}); an approval can only narrow the request.");
        }

        // What the agent acquired while this waited may now combine with it.
        var holdings = await gate.HoldingsAsync(lease.AgentId, lease.TaskId, cancellationToken);
        if (ToxicCombinationRule.FirstReached(gate.Policy, granted, holdings) is { } toxic)
        {
            throw ToxicApproval(lease, granted, string.Join(" + ", toxic.Scopes.Select(s => s.Text)), toxic.RuleId);
        }

        // The read above is advisory; the store checks the same combinations again in the approving
        // write itself, so a BeginTask racing this approval cannot leave both halves of a pair active.
        var guards = ToxicCombinationRule.AgentWideGuards(gate.Policy, granted);
        // Audit first: a failed append is UNAVAILABLE and leaves the approval pending (the operator
        // retries) — never an applied approval without its record.
        await audit.RaiseAsync(Decided(lease, "approve", granted, actor, note), cancellationToken);
        // The store checks the deadline against the time of the write, read after the append (which can take a second or
        // more while it waits for a replica): a decision is never applied after the approval's deadline.
        var result = await ApplyAsync(lease, "approve", actor, () =>
            {
                var now = time.GetUtcNow();
                return store.ApproveAsync(lease.LeaseId, granted, now + lease.Approval!.LeaseTtl, actor, note, now, lease.Generation, cancellationToken, guards);
            }, cancellationToken,
            refused => ToxicApproval(lease, granted, ToxicScopesOf(refused.RuleId), refused.RuleId ?? "toxic"));
        return result.Lease!;
    }

    private static BrokerException ToxicApproval(Lease lease, IReadOnlyList<string> granted, string combination, string ruleId) =>
        new(BrokerErrorKind.FailedPrecondition,
            $"Approving [{string.Join(' ', granted)}] would give agent '{lease.AgentId}' the forbidden combination {combination} with its other active leases; narrow the approval or deny it.",
            [ruleId]);

    private string ToxicScopesOf(string? ruleId) =>
        gate.Policy.ToxicCombinations.FirstOrDefault(c => c.RuleId == ruleId) is { } c ? string.Join(" + ", c.Scopes.Select(s => s.Text)) : ruleId ?? "toxic";

    /// <summary>
    /// Applies a decision already in the chain. When it does not apply (decided elsewhere or expired
    /// meanwhile, or the store failed), a second <c>approval.decided</c> record with <c>applied=false</c>
    /// says so (<c>applied=unknown</c> when the store failed), so the chain never shows a decision as in force that is not.
    /// </summary>
    private async Task<LeaseTransition> ApplyAsync(
        Lease lease, string verdict, string actor, Func<Task<LeaseTransition>> apply, CancellationToken cancellationToken, Func<LeaseTransition, BrokerException>? toxic = null)
    {
        LeaseTransition result;
        try
        {
            result = await StoreCall.Run(apply);
        }
        catch (BrokerException e) when (e.Kind == BrokerErrorKind.Unavailable)
        {
            // The store may or may not have applied it: the record says so instead of guessing.
            await audit.RaiseAsync(NotApplied(lease, verdict, actor, e.Message, applied: "unknown"), cancellationToken);
            throw;
        }
        finally
        {
            Wake();
        }

        if (result.Outcome != TransitionOutcome.Applied)
        {
            var now = time.GetUtcNow();
            var refusal = result.Outcome == TransitionOutcome.ToxicCombination && toxic is not null ? toxic(result) : NotPending(result.Lease ?? lease, now);
            await audit.RaiseAsync(NotApplied(lease, verdict, actor, refusal.Message, applied: "false"), cancellationToken);
            throw refusal;
        }

        return result;
    }

    private AuditEvent NotApplied(Lease lease, string verdict, string actor, string why, string applied) =>
        AuditEvent.ForLease(AuditEventType.ApprovalDecided, lease, time.GetUtcNow()) with
        {
            Operator = actor,
            Reason = (applied == "false" ? "not applied: " : "outcome unknown: ") + why,
            Details = new Dictionary<string, string> { ["verdict"] = verdict, ["approval_id"] = lease.LeaseId, ["applied"] = applied },
        };

    public async Task<Lease> DenyAsync(string approvalId, string reason, string actor, CancellationToken cancellationToken)
    {
        Note(reason, required: true);
        var lease = await PendingAsync(approvalId, cancellationToken);
        await audit.RaiseAsync(Decided(lease, "deny", [], actor, reason), cancellationToken);
        // As for an approval: the deadline is checked at the time of the write (past it, the store ends the request as expired).
        var result = await ApplyAsync(lease, "deny", actor,
            () => store.RevokeAsync(lease.LeaseId, reason, actor, time.GetUtcNow(), lease.Generation, cancellationToken), cancellationToken);
        return result.Lease!;
    }

    private AuditEvent Decided(Lease lease, string verdict, IReadOnlyList<string> granted, string actor, string reason) =>
        AuditEvent.ForLease(AuditEventType.ApprovalDecided, lease, time.GetUtcNow()) with
        {
            ScopesRequested = lease.Scopes,
            ScopesGranted = granted,
            RuleIds = lease.Approval?.RuleIds ?? [],
            Operator = actor,
            Reason = reason,
            Details = new Dictionary<string, string>
            {
                ["verdict"] = verdict,
                ["approval_id"] = lease.LeaseId,
                ["narrowed"] = verdict == "approve" && granted.Count < lease.Scopes.Count ? "true" : "false",
            },
        };

    /// <summary>The approval's state now and at every change until it is decided or expires; the approved view carries a token.</summary>
    public async IAsyncEnumerable<ApprovalView> WatchAsync(CallerIdentity caller, string approvalId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(approvalId);
        ApprovalState? last = null;
        while (true)
        {
            var changed = _changed.Task;
            var lease = await StoreCall.Run(() => store.GetAsync(approvalId, cancellationToken));
            if (lease?.Approval is null || lease.AgentId != caller.AgentId)
            {
                throw new BrokerException(BrokerErrorKind.NotFound, $"Approval '{approvalId}' not found for this agent.");
            }

            var now = time.GetUtcNow();
            var state = WatchedStateOf(lease, now);
            if (state != last)
            {
                last = state;
                var token = state == ApprovalState.Approved && lease.StateAt(now) == LeaseState.Active && agents.Find(lease.AgentId) is { } agent
                    ? await _mint.MintAsync(caller, lease, agent, lease.Scopes, lease.Audience, lease.Approval.RequestedScopes, lease.Approval.RuleIds, "watch_approval", cancellationToken)
                    : null;
                yield return new ApprovalView(state == ApprovalState.Pending ? lease : LeaseQuery.AsOf(lease, now), state, token);
            }

            if (state != ApprovalState.Pending)
            {
                yield break;
            }

            var untilDeadline = lease.Deadline - now;
            var wait = untilDeadline > TimeSpan.Zero && untilDeadline < PollInterval ? untilDeadline + TimeSpan.FromMilliseconds(1) : PollInterval;
            await Task.WhenAny(changed, Task.Delay(wait, time, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// <see cref="StateOf"/> as a watcher reports it: a request whose deadline has passed on this replica's clock but that the
    /// store still holds pending (no sweeper has claimed it yet) is still pending. Until a sweeper ends it a decision can reach
    /// the store first (a replica whose clock is a little behind, a write held up by a failover) and then that decision is the
    /// outcome; once a sweeper has claimed it, it is expired for every reader and writer and its approval.expired record
    /// follows. So "expired" is never said of an approval that is then approved or denied (found by the chaos run).
    /// </summary>
    internal static ApprovalState WatchedStateOf(Lease lease, DateTimeOffset now) =>
        StateOf(lease, now) is ApprovalState.Expired && lease.State == LeaseState.PendingApproval ? ApprovalState.Pending : StateOf(lease, now);

    private async Task<Lease> PendingAsync(string approvalId, CancellationToken cancellationToken)
    {
        RequestValidator.LeaseId(approvalId);
        var lease = await StoreCall.Run(() => store.GetAsync(approvalId, cancellationToken));
        if (lease?.Approval is null)
        {
            throw new BrokerException(BrokerErrorKind.NotFound, $"Approval '{approvalId}' not found.");
        }

        var now = time.GetUtcNow();
        return StateOf(lease, now) == ApprovalState.Pending ? lease : throw NotPending(lease, now);
    }

    private void Wake() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private static BrokerException NotPending(Lease lease, DateTimeOffset now) =>
        new(BrokerErrorKind.FailedPrecondition, $"Approval {lease.LeaseId} is {StateOf(lease, now).ToString().ToLowerInvariant()}, no longer pending; nothing was changed.");

    private static void Note(string note, bool required)
    {
        if (required && string.IsNullOrWhiteSpace(note))
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, "reason is required when denying: the agent's owner sees it.");
        }

        if (note.Length > LeaseAdministration.MaxReasonLength || note.Any(char.IsControl))
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, $"reason must be at most {LeaseAdministration.MaxReasonLength} characters without control characters.");
        }
    }
}
