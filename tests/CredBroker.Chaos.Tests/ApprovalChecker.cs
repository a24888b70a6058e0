using System.Text;
using System.Text.Json;
using CredBroker.Contracts.V1;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>The approval figures of one run (docs/reliability.md).</summary>
public sealed class ApprovalFigures
{
    /// <summary>Pending BeginTasks acknowledged to an agent.</summary>
    public int Requested { get; set; }

    /// <summary>Approvals the operator loop saw (ListApprovals), including those whose BeginTask was not acknowledged.</summary>
    public int Listed { get; set; }

    public int Approved { get; set; }

    public int ApprovedNarrowed { get; set; }

    public int Denied { get; set; }

    /// <summary><c>approval.expired</c> records (no operator decided in time: planned, or the decision failed under a fault).</summary>
    public int Expired { get; set; }

    /// <summary>Tokens agents received for approvals (WatchApproval or a repeated BeginTask).</summary>
    public int Tokens { get; set; }

    /// <summary>Agents that ended with a clear refusal (denied, expired, revoked, FAILED_PRECONDITION).</summary>
    public int Refusals { get; set; }

    public int WatchStreams { get; set; }

    /// <summary>Watch streams cut by a fault, after which the agent reconnected to another replica.</summary>
    public int Reconnects { get; set; }

    /// <summary>Acknowledged decisions not in force after the run.</summary>
    public int Lost { get; set; }
}

/// <summary>
/// Invariant (7), approvals: (a) no token before an approval: every token an agent got for an approval follows an
/// APPROVE the operator sent, and its <c>iat</c> is not before that send − the clock bound; (b) a denied or expired
/// approval never yields a token, and every agent ends with its token exactly once or a clear refusal that agrees with
/// the decision, across stream cuts and reconnects; (c) an approval narrowed to some scopes yields tokens (and a lease)
/// with exactly those scopes; (d) no acknowledged decision is lost: an approved lease is never left pending or expired
/// as an unanswered approval, a denied one ends revoked; (e) the audit chain holds <c>approval.requested</c> for every
/// acknowledged request, <c>approval.decided</c> for every acknowledged decision and <c>approval.expired</c> for every
/// expiry an agent was told of; no approval is still pending after the run.
/// </summary>
public static class ApprovalChecker
{
    private static readonly string[] Ended = ["completed", "revoked", "expired"];

    public static async Task CheckAsync(ChaosRun run, CheckResult result)
    {
        var approvals = run.History.Approvals;
        var figures = result.Approvals;
        var requests = approvals.Requests.Values.ToList();
        var decisions = approvals.Decisions.ToDictionary(d => d.Key, d => d.Value, StringComparer.Ordinal);
        result.Violations.AddRange(approvals.Violations);
        figures.Requested = requests.Count;
        figures.Listed = decisions.Count;

        // Every approval (and the lease an approve started) has reached its deadline before the final reads.
        var ids = requests.Select(r => r.ApprovalId).Union(decisions.Keys, StringComparer.Ordinal).ToList();
        var latest = requests.Select(r => r.PendingDeadline).DefaultIfEmpty(DateTimeOffset.UtcNow).Max() + ChaosRun.ApprovalTimeout + TimeSpan.FromSeconds(2) + Core.Leases.ExpiredLease.ClaimTimeout;
        while (DateTimeOffset.UtcNow < latest)
        {
            await Task.Delay(200);
        }

        var operators = run.Replicas[0].Operator;
        var final = new Dictionary<string, Lease?>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            final[id] = await Checker.FinalStateAsync(operators, id);
        }

        var audit = await AuditAsync(operators);
        if (Environment.GetEnvironmentVariable("CREDBROKER_CHAOS_APPROVAL_TRACE") is { Length: > 0 })
        {
            foreach (var g in run.History.Calls.GroupBy(c => (c.Kind, c.Status)).OrderBy(g => g.Key.Kind, StringComparer.Ordinal))
            {
                await TestContext.Out.WriteLineAsync($"CALLS {g.Key.Kind} {g.Key.Status} {g.Count()} max {g.Max(c => c.Answered - c.Sent).TotalMilliseconds:0} ms");
            }

            foreach (var g in approvals.PartialPages.GroupBy(p => p.Shards, StringComparer.Ordinal))
            {
                await TestContext.Out.WriteLineAsync($"PARTIAL ListApprovals pages naming unreachable shards {g.Key}: {g.Count()} ({g.Min(p => p.At):HH:mm:ss.fff}..{g.Max(p => p.At):HH:mm:ss.fff})");
            }
        }

        foreach (var id in ids)
        {
            var request = approvals.Requests.GetValueOrDefault(id);
            var decision = decisions.GetValueOrDefault(id);
            var lease = final[id];
            var trail = audit.GetValueOrDefault(id) ?? [];
            var expiredRecord = trail.Any(e => e.Type == "approval.expired");
            if (expiredRecord && request is not null)
            {
                figures.Expired++;
            }

            if (lease is null)
            {
                if (request is not null)
                {
                    result.Violations.Add($"(7)(e) approval {id} was acknowledged (BeginTask pending) but its lease does not exist");
                    await TraceAsync(id, request, decision, "missing", trail);
                }

                continue;
            }

            // (e) nothing is left waiting for a human after the run.
            if (!Ended.Contains(lease.State))
            {
                result.Violations.Add($"(7)(e) approval {id} is still '{lease.State}' after every deadline passed (deadline {lease.Deadline?.ToDateTimeOffset():O})");
            }

            // (e) an expiry is recorded: as an unanswered approval, or (approved first) as the lease's expiry.
            if (lease.State == "expired" && !trail.Any(e => e.Type is "approval.expired" or "lease.expired"))
            {
                result.Violations.Add($"(7)(e) approval {id} expired (deadline {lease.Deadline?.ToDateTimeOffset():O}) but the chain has neither approval.expired nor lease.expired for it");
            }

            if (request is not null && !trail.Any(e => e.Type == "approval.requested"))
            {
                result.Violations.Add($"(7)(e) approval {id}: the pending BeginTask was acknowledged at {request.Acked:O} but the chain has no approval.requested record");
            }

            var approve = decision is not null && decision.Plan.StartsWith("approve", StringComparison.Ordinal) ? decision : null;
            var deny = decision is { Plan: "deny" } ? decision : null;
            var narrowed = approve is { Scopes.Count: > 0 } ? approve.Scopes.Order(StringComparer.Ordinal).ToList() : null;
            if (decision?.Acked is { } acked)
            {
                var verdict = approve is not null ? "approve" : "deny";
                if (approve is not null)
                {
                    figures.Approved++;
                    figures.ApprovedNarrowed += narrowed is null ? 0 : 1;
                }
                else
                {
                    figures.Denied++;
                }

                if (!trail.Any(e => e.Type == "approval.decided" && e.Details.GetValueOrDefault("verdict") == verdict && !e.Details.ContainsKey("applied")))
                {
                    result.Violations.Add($"(7)(e) approval {id}: '{verdict}' was acknowledged at {acked.At:O} but the chain has no approval.decided record of it");
                }

                // (d) the acknowledged decision is in force.
                var lost = approve is not null
                    ? acked.State != "approved" || expiredRecord || lease.State == "pending_approval"
                    : acked.State != "denied" || lease.State != "revoked";
                if (lost)
                {
                    figures.Lost++;
                    result.Violations.Add($"(7)(d) approval {id}: '{verdict}' acknowledged at {acked.At:O} (answer '{acked.State}') but the lease is '{lease.State}'{(expiredRecord ? ", recorded approval.expired" : "")}");
                }

                // (c) an approval narrowed to some scopes grants exactly those.
                if (approve is not null && narrowed is not null && !acked.Granted.Order(StringComparer.Ordinal).SequenceEqual(narrowed, StringComparer.Ordinal))
                {
                    result.Violations.Add($"(7)(c) approval {id}: approved narrowed to [{string.Join(' ', narrowed)}] but the answer granted [{string.Join(' ', acked.Granted)}]");
                }
            }

            if (narrowed is not null && decision?.Acked is not null && lease.State != "pending_approval"
                && !lease.Scopes.Order(StringComparer.Ordinal).SequenceEqual(narrowed, StringComparer.Ordinal))
            {
                result.Violations.Add($"(7)(c) approval {id}: approved narrowed to [{string.Join(' ', narrowed)}] but the lease holds [{string.Join(' ', lease.Scopes)}]");
            }

            await TraceAsync(id, request, decision, lease.State, trail);

            if (request is null)
            {
                continue;
            }

            figures.WatchStreams += request.Statuses.Select(s => s.Stream).Distinct().Count();
            figures.Reconnects += request.Cuts;
            var tokens = request.Tokens.ToList();
            figures.Tokens += tokens.Count;
            if (tokens.Count > 1)
            {
                result.Violations.Add($"(7)(b) approval {id}: the agent got {tokens.Count} tokens for one approval");
            }

            foreach (var token in tokens)
            {
                var (iat, scopes) = Claims(token.Token.Token);
                // (a) no token before an approval was sent (iat is whole seconds: floor the bound too).
                if (approve?.FirstSent is not { } approveSent)
                {
                    result.Violations.Add($"(7)(a) approval {id}: the agent got a token ({token.Via}, jti {token.Token.Jti}) at {token.At:O} but no APPROVE was ever sent (plan '{decision?.Plan ?? "never listed"}')");
                    continue;
                }

                if (iat < (approveSent - Checker.ClockBound).ToUnixTimeSeconds() || token.At < approveSent)
                {
                    result.Violations.Add($"(7)(a) approval {id}: token {token.Token.Jti} issued at {DateTimeOffset.FromUnixTimeSeconds(iat):O} (received {token.At:O}) before the APPROVE was sent at {approveSent:O}");
                }

                // (b) a denied or expired approval never yields a token.
                if (deny?.Acked is not null || expiredRecord)
                {
                    result.Violations.Add($"(7)(b) approval {id}: the agent got token {token.Token.Jti} but the approval was {(expiredRecord ? "recorded expired" : "denied (acknowledged)")}");
                }

                // (c) the token carries exactly the approved scopes.
                var expected = narrowed ?? request.Requested.Order(StringComparer.Ordinal).ToList();
                if (!scopes.SequenceEqual(expected, StringComparer.Ordinal))
                {
                    result.Violations.Add($"(7)(c) approval {id}: token {token.Token.Jti} has scopes [{string.Join(' ', scopes)}], approved [{string.Join(' ', expected)}]");
                }
            }

            // (b) every wait ends with the token or a clear refusal that agrees with what happened.
            switch (request.Outcome)
            {
                case "token":
                    break;
                case null or "gave up":
                    result.Violations.Add($"(7)(b) approval {id}: the agent got neither its token nor a refusal within {ChaosRun.ApprovalPatience.TotalSeconds:0} s of the deadline "
                        + $"({request.Streams} attempts: {string.Join(", ", request.Statuses.Select(s => $"#{s.Stream} {s.Broker} {s.State}"))})");
                    break;
                default:
                    figures.Refusals++;
                    if (request.Outcome == "denied" && deny is null)
                    {
                        result.Violations.Add($"(7)(b) approval {id}: the agent was told 'denied' but the operator never denied it (plan '{decision?.Plan ?? "never listed"}')");
                    }

                    if (request.Outcome == "expired" && (approve?.Acked is not null || deny?.Acked is not null || !expiredRecord))
                    {
                        result.Violations.Add($"(7)(b) approval {id}: the agent was told 'expired' but {(expiredRecord ? "a decision was acknowledged" : "the chain has no approval.expired record")}");
                    }

                    if (request.Outcome is "denied" or "expired" && approve?.Acked is not null)
                    {
                        result.Violations.Add($"(7)(b) approval {id}: the agent was told '{request.Outcome}' but the approval was acknowledged at {approve.Acked.Value.At:O}");
                    }

                    break;
            }

            var terminal = request.Statuses.Select(s => s.State).Where(s => s is "approved" or "denied" or "expired").Distinct().ToList();
            if (terminal.Count > 1)
            {
                result.Violations.Add($"(7)(b) approval {id}: the agent was told {string.Join(" and ", terminal)} on different streams");
            }
        }
    }

    /// <summary>With CREDBROKER_CHAOS_APPROVAL_TRACE: one line per approval (what each side was told, the chain's records), also for a missing lease.</summary>
    private static async Task TraceAsync(string id, ApprovalRecord? request, DecisionRecord? decision, string lease, List<AuditEvent> trail)
    {
        if (Environment.GetEnvironmentVariable("CREDBROKER_CHAOS_APPROVAL_TRACE") is { Length: > 0 })
        {
            await TestContext.Out.WriteLineAsync($"TRACE {id} agent={request?.AgentId} acked={request?.Acked:HH:mm:ss.fff} deadline={request?.PendingDeadline:HH:mm:ss.fff} plan={decision?.Plan} sent={decision?.FirstSent:HH:mm:ss.fff} ack={decision?.Acked} unknown={decision?.Unknown} refused={decision?.Refused} lease={lease} outcome={request?.Outcome}@{request?.OutcomeAt:HH:mm:ss.fff} trail=[{string.Join(",", trail.Select(e => e.Type + "@" + e.Time.ToDateTimeOffset().ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)))}] statuses=[{string.Join(",", request?.Statuses.Select(x => $"#{x.Stream} {x.Broker} {x.State}@{x.At:HH:mm:ss.fff}") ?? [])}]");
        }
    }

    /// <summary>The approval-related records of the chain (and expiries), by lease id.</summary>
    private static async Task<Dictionary<string, List<AuditEvent>>> AuditAsync(Client.CredBrokerOperatorClient operators)
    {
        var byLease = new Dictionary<string, List<AuditEvent>>(StringComparer.Ordinal);
        long after = 0;
        while (true)
        {
            var page = 0;
            var request = new QueryAuditRequest { AfterSequence = after, Limit = 10000, EventTypes = { "approval.requested", "approval.decided", "approval.expired", "lease.expired" } };
            await foreach (var record in operators.QueryAuditAsync(request))
            {
                page++;
                after = record.Sequence;
                (byLease.TryGetValue(record.Event.LeaseId, out var list) ? list : byLease[record.Event.LeaseId] = []).Add(record.Event);
            }

            if (page < 10000)
            {
                return byLease;
            }
        }
    }

    /// <summary>The token's <c>iat</c> and sorted <c>scope</c> claims (the payload of a JWT the broker signed; its signature is the validators' business).</summary>
    internal static (long Iat, List<string> Scopes) Claims(string jwt)
    {
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
        using var json = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
        var iat = json.RootElement.GetProperty("iat").GetInt64();
        var scopes = json.RootElement.TryGetProperty("scope", out var scope) ? scope.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList() : [];
        return (iat, scopes);
    }
}
