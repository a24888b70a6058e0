using CredBroker.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>
/// Approvals in the client mix: agents ask for a scope that needs a human (<see cref="ApprovalScope"/>, the
/// agents' <c>approval_scopes</c>) and wait with WatchApproval on a random replica, reconnecting on another one when
/// the stream is cut (or repeating BeginTask); an operator loop lists the pending approvals and approves (sometimes
/// narrower), denies with a reason, or lets them expire (<see cref="ApprovalTimeout"/>). Everything each side was told
/// goes into <see cref="History.Approvals"/>; <see cref="ApprovalChecker"/> judges it.
/// </summary>
public sealed partial class ChaosRun
{
    /// <summary>The scope that needs approval (every chaos agent's <c>approval_scopes</c>).</summary>
    public const string ApprovalScope = "tickets:export";

    /// <summary>The policy's <c>settings.approval_timeout</c>: short, so that some approvals expire within a run.</summary>
    public static readonly TimeSpan ApprovalTimeout = TimeSpan.FromSeconds(4);

    /// <summary>How long an agent keeps reconnecting after the approval's deadline before it records "gave up".</summary>
    public static readonly TimeSpan ApprovalPatience = TimeSpan.FromSeconds(20);

    private static readonly string[] ApprovalRequest = ["tickets:read", ApprovalScope];

    private static string PolicySettingsYaml => $"settings:\n  approval_timeout: {ApprovalTimeout.TotalSeconds:0}s\n";

    private static string ApprovalScopesYaml => $"    approval_scopes: [{ApprovalScope}]\n";

    /// <summary>One agent asking for approvals in turn: pending BeginTask, wait for the decision, then use and end the lease.</summary>
    private async Task ApprovalClientLoopAsync(int index, CancellationToken stop)
    {
        var random = new Random(_options.Seed + 1000 + index);
        var task = 0;
        while (!stop.IsCancellationRequested && Interlocked.Increment(ref _operations) <= _options.MaxOperations)
        {
            var agent = random.Next(AgentCount + 1);
            var replica = _replicas[random.Next(_replicas.Count)];
            var request = new BeginTaskRequest
            {
                TaskId = $"a{index}-{task++}-{Guid.NewGuid():N}"[..24],
                Scopes = { ApprovalRequest },
                Audience = "tickets-api",
                Ttl = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(random.Next(1500, 4000))),
            };
            var begun = await CallAsync("BeginTask (approval)", replica, () => replica.ClientFor(Subject(agent)).BeginTaskAsync(request));
            if (begun is null)
            {
                await Task.Delay(random.Next(20, 100), CancellationToken.None);
                continue;
            }

            ApprovedToken? token;
            if (begun.ApprovalId.Length == 0)
            {
                // A token at once: the client's own retry (it retries UNAVAILABLE) found the request an earlier attempt had
                // opened (that attempt's answer was lost: e.g. its WAIT or its approval.requested append fell short), which the
                // operator, who lists pending requests, approved meanwhile; the retry is a repeated BeginTask of an approved
                // task. Judged after the run like every approval's token (ApprovalChecker): an APPROVE must have been sent
                // for it before its iat, with exactly the approved scopes, and the chain must hold the request and decision.
                var retried = _history.Approvals.Requests.GetOrAdd(begun.LeaseId, id => new ApprovalRecord(
                    id, AgentId(agent), request.TaskId, [.. ApprovalRequest], DateTimeOffset.UtcNow, begun.LeaseDeadline.ToDateTimeOffset()));
                token = Deliver(retried, "begin_task (client retry)", begun.AccessToken, begun.TokenId, begun.TokenExpiresAt.ToDateTimeOffset(), begun.LeaseDeadline.ToDateTimeOffset());
            }
            else
            {
                var pending = _history.Approvals.Requests.GetOrAdd(begun.ApprovalId, id => new ApprovalRecord(
                    id, AgentId(agent), request.TaskId, [.. begun.GrantedScopes], DateTimeOffset.UtcNow, begun.LeaseDeadline.ToDateTimeOffset()));
                token = await AwaitApprovalAsync(pending, agent, request, random);
            }

            if (token is null)
            {
                continue;
            }

            var record = _history.Approvals.Requests[begun.LeaseId];

            // The approved lease joins the ordinary history: invariants (1)-(6) judge it like any other.
            var lease = _history.Leases.GetOrAdd(record.ApprovalId, id => new LeaseRecord(id, record.AgentId, record.Acked, token.Deadline));
            Record(lease.LeaseId, lease.AgentId, token.Token, token.Jti, token.Expires);
            await IntrospectAsync(random);
            var end = random.Next(10);
            replica = _replicas[random.Next(_replicas.Count)];
            if (end < 4)
            {
                MarkEndSent(lease);
                if (await CallAsync("CompleteTask", replica, () => replica.ClientFor(Subject(agent)).CompleteTaskAsync(lease.LeaseId)) is { } completed)
                {
                    Acknowledge(lease, completed.State);
                }
            }
            else if (end < 6)
            {
                MarkEndSent(lease);
                if (await CallAsync("RevokeLease", replica, () => replica.Operator.RevokeLeaseAsync(lease.LeaseId, "chaos")) is { } revoked)
                {
                    Acknowledge(lease, revoked.Lease.State);
                }
            }
        }
    }

    private sealed record ApprovedToken(string Token, string Jti, DateTimeOffset Expires, DateTimeOffset Deadline);

    /// <summary>
    /// Waits for the decision: WatchApproval on a random replica; when the stream is cut, another replica (or, one time
    /// in three, the same BeginTask again). Returns the token once, or null after a clear refusal (recorded).
    /// </summary>
    private async Task<ApprovedToken?> AwaitApprovalAsync(ApprovalRecord record, int agent, BeginTaskRequest request, Random random)
    {
        var giveUp = record.PendingDeadline + ApprovalPatience;
        Replica? last = null;
        while (DateTimeOffset.UtcNow < giveUp)
        {
            var replica = _replicas[random.Next(_replicas.Count)];
            if (replica == last && _replicas.Count > 1)
            {
                replica = _replicas[(_replicas.IndexOf(replica) + 1) % _replicas.Count];
            }

            last = replica;
            var client = replica.ClientFor(Subject(agent));
            var stream = ++record.Streams;
            if (stream > 1 && random.Next(3) == 0)
            {
                var sent = DateTimeOffset.UtcNow;
                try
                {
                    var again = await client.BeginTaskAsync(request);
                    _history.Calls.Enqueue(new CallRecord("BeginTask (approval replay)", replica.Name, sent, DateTimeOffset.UtcNow, StatusCode.OK));
                    var hasToken = again.AccessToken.Length > 0;
                    record.Statuses.Enqueue(new ApprovalStatusSeen(stream, replica.Name, hasToken ? "approved" : "pending", hasToken, DateTimeOffset.UtcNow));
                    if (hasToken)
                    {
                        return Deliver(record, "begin_task.replay", again.AccessToken, again.TokenId, again.TokenExpiresAt.ToDateTimeOffset(), again.LeaseDeadline.ToDateTimeOffset());
                    }
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.PermissionDenied)
                {
                    // Denied, expired or revoked: the clear refusal of a repeated BeginTask.
                    _history.Calls.Enqueue(new CallRecord("BeginTask (approval replay)", replica.Name, sent, DateTimeOffset.UtcNow, e.StatusCode));
                    record.Statuses.Enqueue(new ApprovalStatusSeen(stream, replica.Name, "refused:" + e.StatusCode, false, DateTimeOffset.UtcNow));
                    Conclude(record, "refused:" + e.StatusCode);
                    return null;
                }
                catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
                {
                    _history.Calls.Enqueue(new CallRecord("BeginTask (approval replay)", replica.Name, sent, DateTimeOffset.UtcNow, (e as RpcException)?.StatusCode ?? StatusCode.Unavailable));
                    record.Cuts++;
                }

                await Task.Delay(random.Next(100, 300), CancellationToken.None);
                continue;
            }

            var opened = DateTimeOffset.UtcNow;
            var status = StatusCode.OK;
            // A stream outlives the approval's deadline only by a little: a paused replica must not hold the agent forever.
            using var bound = new CancellationTokenSource(giveUp - DateTimeOffset.UtcNow > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(2));
            ApprovedToken? token = null;
            string? refusal = null;
            try
            {
                await foreach (var seen in client.WatchApprovalAsync(record.ApprovalId, bound.Token))
                {
                    var at = DateTimeOffset.UtcNow;
                    record.Statuses.Enqueue(new ApprovalStatusSeen(stream, replica.Name, seen.State, seen.AccessToken.Length > 0, at));
                    if (token is not null || refusal is not null)
                    {
                        _history.Approvals.Violations.Enqueue($"(7) approval {record.ApprovalId}: {replica.Name} sent '{seen.State}' after the terminal status on the same stream");
                        continue;
                    }

                    if (seen.State == "approved" && seen.AccessToken.Length > 0)
                    {
                        token = Deliver(record, "watch", seen.AccessToken, seen.TokenId, seen.TokenExpiresAt.ToDateTimeOffset(), seen.Deadline.ToDateTimeOffset());
                    }
                    else if (seen.State == "approved")
                    {
                        // Approved, but the lease ended before this watcher read it (e.g. it expired during a cut): no token to give.
                        refusal = "approved-ended";
                    }
                    else if (seen.State != "pending")
                    {
                        refusal = seen.State;
                    }
                }
            }
            catch (RpcException e)
            {
                status = e.StatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                status = StatusCode.Unavailable;
            }

            _history.Calls.Enqueue(new CallRecord("WatchApproval", replica.Name, opened, DateTimeOffset.UtcNow, status));
            if (token is not null)
            {
                return token;
            }

            if (refusal is not null)
            {
                Conclude(record, refusal);
                return null;
            }

            if (status == StatusCode.NotFound)
            {
                Conclude(record, "not_found");
                return null;
            }

            // Cut (or ended without a decision): reconnect elsewhere.
            record.Cuts++;
            await Task.Delay(random.Next(50, 250), CancellationToken.None);
        }

        Conclude(record, "gave up");
        return null;
    }

    private ApprovedToken Deliver(ApprovalRecord record, string via, string token, string jti, DateTimeOffset expires, DateTimeOffset deadline)
    {
        var at = DateTimeOffset.UtcNow;
        record.Tokens.Enqueue(new ApprovalToken(new TokenRecord(record.ApprovalId, record.AgentId, token, jti, at, expires), via, at));
        Conclude(record, "token");
        return new ApprovedToken(token, jti, expires, deadline);
    }

    private static void Conclude(ApprovalRecord record, string outcome)
    {
        record.Outcome ??= outcome;
        record.OutcomeAt ??= DateTimeOffset.UtcNow;
    }

    /// <summary>The human: lists pending approvals on a random replica and approves, narrows, denies or lets each expire.</summary>
    private async Task ApprovalOperatorLoopAsync(CancellationToken stop)
    {
        var random = new Random(_options.Seed - 2);
        var due = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        while (!stop.IsCancellationRequested)
        {
            await Delay(TimeSpan.FromMilliseconds(random.Next(150, 400)), stop);
            if (stop.IsCancellationRequested)
            {
                break;
            }

            // Every page: a page can end early (the listing's scan budget) with a token to go on from.
            var replica = _replicas[random.Next(_replicas.Count)];
            var pending = new List<Approval>();
            var token = "";
            for (var pages = 0; pages < 50; pages++)
            {
                if (await CallAsync("ListApprovals", replica, () => replica.Operator.ListApprovalsAsync(new ListApprovalsRequest { PageSize = 500, PageToken = token })) is not { } page)
                {
                    break;
                }

                // While a cluster master is lost the list is partial (the other masters' approvals, its shards named).
                pending.AddRange(page.Approvals);
                if (page.UnreachableShards.Count > 0)
                {
                    _history.Approvals.PartialPages.Enqueue((DateTimeOffset.UtcNow, string.Join(",", page.UnreachableShards)));
                }

                token = page.NextPageToken;
                if (token.Length == 0)
                {
                    break;
                }
            }

            foreach (var approval in pending)
            {
                var decision = _history.Approvals.Decisions.GetOrAdd(approval.ApprovalId, id =>
                {
                    var roll = random.Next(10);
                    var plan = roll < 4 ? "approve" : roll < 6 ? "approve-narrowed" : roll < 8 ? "deny" : "expire";
                    due[id] = DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(random.Next(200, 1500));
                    return new DecisionRecord(id, approval.AgentId, plan, [.. approval.RequestedScopes])
                    {
                        // Narrowed: one of the requested scopes (either the one that needed approval or the other).
                        Scopes = plan == "approve-narrowed" && approval.RequestedScopes.Count > 1
                            ? [approval.RequestedScopes[random.Next(approval.RequestedScopes.Count)]]
                            : [],
                    };
                });
                if (decision.Done || decision.Plan == "expire" || DateTimeOffset.UtcNow < due.GetValueOrDefault(decision.ApprovalId))
                {
                    continue;
                }

                await DecideAsync(decision);
            }
        }
    }

    private async Task DecideAsync(DecisionRecord decision)
    {
        var replica = AnyReplica();
        var request = new DecideApprovalRequest { ApprovalId = decision.ApprovalId };
        if (decision.Plan == "deny")
        {
            request.Verdict = DecideApprovalRequest.Types.Verdict.Deny;
            request.Reason = "chaos: denied by the operator";
        }
        else
        {
            request.Verdict = DecideApprovalRequest.Types.Verdict.Approve;
            request.Scopes.AddRange(decision.Scopes);
        }

        var sent = DateTimeOffset.UtcNow;
        decision.FirstSent ??= sent;
        try
        {
            var answer = await replica.Operator.DecideApprovalAsync(request);
            _history.Calls.Enqueue(new CallRecord("DecideApproval", replica.Name, sent, DateTimeOffset.UtcNow, StatusCode.OK));
            decision.Acked = (DateTimeOffset.UtcNow, answer.Approval.State, [.. answer.Approval.GrantedScopes]);
            decision.Done = true;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.NotFound)
        {
            // Decided elsewhere (a retry of a decision whose answer was lost), expired meanwhile, or revoked (quarantine).
            _history.Calls.Enqueue(new CallRecord("DecideApproval", replica.Name, sent, DateTimeOffset.UtcNow, e.StatusCode));
            decision.Refused = $"{e.StatusCode}: {e.Status.Detail}";
            decision.Done = true;
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException or OperationCanceledException)
        {
            // Outcome unknown: the loop tries again while the approval is still listed as pending.
            _history.Calls.Enqueue(new CallRecord("DecideApproval", replica.Name, sent, DateTimeOffset.UtcNow, (e as RpcException)?.StatusCode ?? StatusCode.Unavailable));
            decision.Unknown = true;
        }
    }
}
