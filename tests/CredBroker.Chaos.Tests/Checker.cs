using System.Globalization;
using CredBroker.Contracts.V1;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>What the checker found for one run: the invariant violations and the figures for docs/reliability.md.</summary>
public sealed class CheckResult
{
    public required string Topology { get; init; }

    public required string Setting { get; init; }

    public List<string> Violations { get; } = [];

    /// <summary>Problems outside the invariants (e.g. a replica that did not come back), reported, not asserted.</summary>
    public List<string> Findings { get; } = [];

    public Dictionary<string, int> FaultsByKind { get; } = [];

    public int Operations { get; set; }

    public int Tokens { get; set; }

    public int Leases { get; set; }

    public int AcknowledgedEnds { get; set; }

    public int AcknowledgedQuarantines { get; set; }

    public int LostEnds { get; set; }

    public int LostRenewals { get; set; }

    public int LostQuarantineRevocations { get; set; }

    public int InRunIntrospections { get; set; }

    public int FinalIntrospections { get; set; }

    public int ValidatorChecks { get; set; }

    public int InRunValidations { get; set; }

    public int ExpiredLeases { get; set; }

    public TimeSpan MaxExpiryLag { get; set; }

    public TimeSpan P99ExpiryLag { get; set; }

    public int ExpiredLaterThan1s { get; set; }

    /// <summary>Each expiry recorded more than 1 s late: lease, deadline, the time the lag counts from, the record's time, and the faults then.</summary>
    public List<string> LateExpiries { get; } = [];

    public TimeSpan? MaxValidatorCatchUp { get; set; }

    public int ValidatorRestores { get; set; }

    public bool AuditIntact { get; set; }

    public long AuditRecords { get; set; }

    /// <summary>Per fault kind (and "no fault"): calls answered, by status.</summary>
    public Dictionary<string, Dictionary<StatusCode, int>> Availability { get; } = [];

    /// <summary>The answers in the availability table's "other" column, by status, call and detail (how many of each).</summary>
    public Dictionary<(StatusCode Status, string Call, string Detail), int> OtherAnswers { get; } = [];

    /// <summary>The statuses the availability table has columns for; every other one is named in <see cref="OtherAnswers"/>.</summary>
    public static readonly StatusCode[] Columns = [StatusCode.OK, StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.FailedPrecondition];

    public TimeSpan Duration { get; set; }

    /// <summary>Approvals requested, decided, expired and lost (ApprovalChecker).</summary>
    public ApprovalFigures Approvals { get; } = new();
}

/// <summary>
/// Reads the history of one run and the system after it healed, and checks the invariants of issue 17
/// (docs/reliability.md): (1) no token of an ended lease or a quarantined agent is accepted by Introspect on
/// any replica nor by the offline validator; (2) no acknowledged completion, revocation or quarantine is
/// lost; (3) no token without a durable lease and audit record; (4) every lease ends, expired leases
/// within 1 s of their deadline (or of the Redis recovery); (5) the audit chain verifies; (6) no lease
/// expires early or stays valid late beyond the clock bound.
/// </summary>
public static class Checker
{
    /// <summary>The documented clock bound (docs/reliability.md, "One clock").</summary>
    public static readonly TimeSpan ClockBound = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The offline validator counts as caught up with an acknowledged revocation once it holds a heartbeat whose time
    /// (the start of the broker's read that reached the end of the log) is this long after the acknowledgement; the
    /// allowance covers the clocks of the broker replicas (Redis-corrected) and of this process.
    /// </summary>
    public static readonly TimeSpan ValidatorCatchUpAllowance = TimeSpan.FromMilliseconds(500);

    private static readonly string[] Terminal = ["completed", "revoked", "expired"];

    /// <summary>The broker log lines that name the error id an INTERNAL answer carries ("error id 0123abcd"), so the report shows the exception.</summary>
    private static string BrokerLogFor(ChaosRun run, string? detail)
    {
        var match = System.Text.RegularExpressions.Regex.Match(detail ?? "", "error id ([0-9a-f]+)");
        if (!match.Success)
        {
            return "";
        }

        var lines = run.Replicas.SelectMany(r => r.Process.Output.Split('\n')).Where(l => l.Contains(match.Groups[1].Value, StringComparison.Ordinal)).ToList();
        return lines.Count == 0 ? " (not in the live replicas' logs)" : " — broker log: " + string.Join(" / ", lines.Select(l => l.Length > 2000 ? l[..2000] + "…" : l.Trim()));
    }

    /// <summary>The live replicas' broker warnings and errors between <paramref name="from"/> and <paramref name="to"/> (a few, shortened), to explain a late expiry.</summary>
    private static string BrokerWarnings(ChaosRun run, DateTimeOffset from, DateTimeOffset to)
    {
        var lines = new List<string>();
        foreach (var replica in run.Replicas)
        {
            foreach (var line in replica.Process.Output.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{') && l.EndsWith('}')))
            {
                // The broker logs one JSON object per line (Serilog's compact JSON: Timestamp, Level, RenderedMessage).
                using var entry = System.Text.Json.JsonDocument.Parse(line);
                var log = entry.RootElement;
                if (log.TryGetProperty("Level", out var level) && level.GetString() is "Warning" or "Error"
                    && log.TryGetProperty("Timestamp", out var at) && at.TryGetDateTimeOffset(out var time) && time >= from - TimeSpan.FromSeconds(1) && time <= to
                    && log.TryGetProperty("RenderedMessage", out var message) && message.GetString() is { } text)
                {
                    lines.Add($"{replica.Name} {time:HH:mm:ss.fff} {(text.Length > 220 ? text[..220] + "…" : text)}");
                }
            }
        }

        return lines.Count == 0 ? "; no broker warning in that time" : "; broker warnings then: " + string.Join(" / ", lines.Order(StringComparer.Ordinal).Take(6));
    }

    public static async Task<CheckResult> CheckAsync(ChaosRun run, DateTimeOffset started)
    {
        var history = run.History;
        var result = new CheckResult { Topology = run.Topology.Name, Setting = run.Topology.Setting, Duration = DateTimeOffset.UtcNow - started };
        var faults = history.Faults.ToList();
        foreach (var fault in faults)
        {
            result.FaultsByKind[fault.Kind] = result.FaultsByKind.GetValueOrDefault(fault.Kind) + 1;
        }

        var calls = history.Calls.ToList();
        result.Operations = calls.Count;
        foreach (var call in calls)
        {
            var kind = faults.FirstOrDefault(f => f.End > f.Start && call.Sent >= f.Start && call.Sent <= f.End)?.Kind ?? "no fault";
            var byStatus = result.Availability.TryGetValue(kind, out var existing) ? existing : result.Availability[kind] = [];
            byStatus[call.Status] = byStatus.GetValueOrDefault(call.Status) + 1;
            if (!CheckResult.Columns.Contains(call.Status))
            {
                var key = (call.Status, call.Kind, call.Detail ?? "");
                result.OtherAnswers[key] = result.OtherAnswers.GetValueOrDefault(key) + 1;
                if (call.Status is StatusCode.Unknown or StatusCode.Internal)
                {
                    // The broker answers every refusal with a deliberate status; UNKNOWN/INTERNAL is an unhandled exception.
                    result.Findings.Add($"{call.Kind} on {call.Broker} answered {call.Status} (a product bug): {call.Detail}{BrokerLogFor(run, call.Detail)}");
                }
            }
        }

        var leases = history.Leases.Values.ToList();
        var tokens = history.Tokens.ToList();
        result.Leases = leases.Count;
        result.Tokens = tokens.Count;

        // Let every lease reach its deadline (plus sweeps), then read the final state of each.
        var operators = run.Replicas[0].Operator;
        var lastDeadline = leases.Count == 0 ? DateTimeOffset.UtcNow : leases.Max(l => l.Deadline);
        // (+ the claim timeout: an expiry claimed by a replica that died before recording it is recorded by another after it)
        while (DateTimeOffset.UtcNow < lastDeadline + TimeSpan.FromSeconds(2) + Core.Leases.ExpiredLease.ClaimTimeout)
        {
            await Task.Delay(200);
        }

        // Then wait (a condition, bounded) until every lease that ended expired has its expiry record: after a Redis fault
        // near the end of the run the sweepers record them once the audit log takes writes again. What is still missing
        // after the bound is a violation below; the lag is in the figures.
        var settleBy = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        var final = new Dictionary<string, Lease?>(StringComparer.Ordinal);
        var unsettled = leases.Select(l => l.LeaseId).ToList();
        while (true)
        {
            // An ended lease stays as it is: only the ones not yet ended, or expired without a record, are read again.
            foreach (var leaseId in unsettled)
            {
                final[leaseId] = await FinalStateAsync(operators, leaseId);
            }

            var unrecorded = final.Where(f => f.Value?.State == "expired").Select(f => f.Key).ToHashSet(StringComparer.Ordinal);
            if (unrecorded.Count > 0)
            {
                var request = new QueryAuditRequest { Limit = 10000, EventTypes = { "lease.expired", "approval.expired" } };
                await foreach (var record in operators.QueryAuditAsync(request))
                {
                    unrecorded.Remove(record.Event.LeaseId);
                }
            }

            if (unrecorded.Count == 0 || DateTimeOffset.UtcNow > settleBy)
            {
                break;
            }

            unsettled = final.Where(f => unrecorded.Contains(f.Key) || f.Value?.State is null or "active" or "pending_approval").Select(f => f.Key).ToList();

            await Task.Delay(500);
        }

        // Audit: every mint (jti), every expiry (time, deadline), and the chain's verification.
        var minted = new HashSet<string>(StringComparer.Ordinal);
        var expired = new Dictionary<string, (DateTimeOffset At, DateTimeOffset Deadline)>(StringComparer.Ordinal);
        long after = 0;
        while (true)
        {
            var page = 0;
            var request = new QueryAuditRequest { AfterSequence = after, Limit = 10000, EventTypes = { "token.minted", "lease.renewed", "lease.expired" } };
            await foreach (var record in operators.QueryAuditAsync(request))
            {
                page++;
                after = record.Sequence;
                // BeginTask and IssueToken mint as token.minted, RenewLease as lease.renewed; both name the jti.
                if (record.Event.Type is "token.minted" or "lease.renewed" && record.Event.Details.TryGetValue("jti", out var jti))
                {
                    minted.Add(jti);
                }
                else if (record.Event.Type == "lease.expired" && record.Event.Details.TryGetValue("deadline", out var deadline))
                {
                    expired[record.Event.LeaseId] = (record.Event.Time.ToDateTimeOffset(), DateTimeOffset.Parse(deadline, CultureInfo.InvariantCulture));
                }
            }

            if (page < 10000)
            {
                break;
            }
        }

        var verified = await Retry(() => operators.VerifyAuditAsync(TimeSpan.FromSeconds(60)));
        result.AuditIntact = verified.Intact;
        result.AuditRecords = verified.RecordsChecked;
        if (!verified.Intact)
        {
            result.Violations.Add($"(5) VerifyAudit is not intact: {verified.Problem} (first broken sequence {verified.FirstBrokenSequence})");
        }

        var quarantines = history.Quarantines.Where(q => q.Acked is not null).ToList();
        result.AcknowledgedQuarantines = quarantines.Count;

        foreach (var lease in leases)
        {
            var state = final[lease.LeaseId];
            // (4) every lease ends.
            if (state is null)
            {
                result.Violations.Add($"(3) lease {lease.LeaseId} was acknowledged (BeginTask) but does not exist");
                continue;
            }

            if (!Terminal.Contains(state.State))
            {
                result.Violations.Add($"(4) lease {lease.LeaseId} is still '{state.State}' past its deadline {state.Deadline?.ToDateTimeOffset():O}");
            }

            if (state.State == "expired" && !expired.ContainsKey(lease.LeaseId))
            {
                result.Violations.Add($"(4) lease {lease.LeaseId} expired (deadline {state.Deadline?.ToDateTimeOffset():O}) but the chain has no lease.expired record of it");
            }

            // (2) an acknowledged end is never lost.
            if (lease.EndAcked is { } end)
            {
                result.AcknowledgedEnds++;
                if (state.State != end.State)
                {
                    result.LostEnds++;
                    result.Violations.Add($"(2) lease {lease.LeaseId}: '{end.State}' acknowledged at {end.At:O} but the lease is '{state.State}'");
                }
            }

            // (2) an acknowledged quarantine revokes every lease of the agent open when it was sent.
            foreach (var q in quarantines.Where(q => q.AgentId == lease.AgentId && lease.Opened < q.Sent && lease.Deadline > q.Acked!.Value + ClockBound))
            {
                if (state.State == "expired" || state.State == "active")
                {
                    result.LostQuarantineRevocations++;
                    result.Violations.Add($"(2) lease {lease.LeaseId} of {lease.AgentId} was open when quarantine was acknowledged at {q.Acked:O} but is '{state.State}'");
                }
            }

            if (state.State == "expired" && expired.TryGetValue(lease.LeaseId, out var expiry))
            {
                // (6) never early; a renewal acknowledged but not in force is a lost write.
                if (expiry.At < expiry.Deadline - ClockBound)
                {
                    result.Violations.Add($"(6) lease {lease.LeaseId} was recorded expired at {expiry.At:O}, before its deadline {expiry.Deadline:O}");
                }

                if (expiry.Deadline < lease.Deadline - TimeSpan.FromMilliseconds(1))
                {
                    result.LostRenewals++;
                    result.Violations.Add($"(2) lease {lease.LeaseId}: deadline {lease.Deadline:O} was acknowledged (RenewLease) but it expired at the older deadline {expiry.Deadline:O}");
                }
            }
        }

        // (4) expiry lag after the deadline, or after the end of a fault the deadline fell into that stops the recording:
        // a Redis fault of any kind the topology injects (a cluster with replicas has three), or a broker replica killed
        // or paused (the issue's "after a replica recovers": its claims are recorded once it is back, or by another
        // replica after the claim timeout).
        var redisFaults = faults.Where(f => run.Topology.RedisFaultKinds.Contains(f.Kind) || f.Kind is "broker kill -9 + restart" or "broker SIGSTOP/SIGCONT").ToList();
        var lags = new List<TimeSpan>();
        foreach (var (leaseId, expiry) in expired)
        {
            if (!history.Leases.ContainsKey(leaseId))
            {
                continue;
            }

            var due = expiry.Deadline;
            var countsFrom = "its deadline";
            foreach (var fault in redisFaults.Where(f => due >= f.Start && due <= f.End + TimeSpan.FromSeconds(1)))
            {
                if (fault.End > due)
                {
                    due = fault.End;
                    countsFrom = $"the end of {fault.Kind} ({fault.Start:HH:mm:ss.fff}–{fault.End:HH:mm:ss.fff})";
                }
            }

            var lag = expiry.At - due;
            lags.Add(lag);
            if (lag > TimeSpan.FromSeconds(1))
            {
                var during = faults.Where(f => f.Start <= expiry.At && f.End >= expiry.Deadline && !f.Kind.EndsWith("whole run", StringComparison.Ordinal)).Select(f => $"{f.Kind} {f.Start:HH:mm:ss.fff}–{f.End:HH:mm:ss.fff}").ToList();
                result.LateExpiries.Add($"lease {leaseId}: deadline {expiry.Deadline:HH:mm:ss.fff}, recorded {expiry.At:HH:mm:ss.fff}, "
                    + $"{lag.TotalMilliseconds:0} ms after {countsFrom}; faults between deadline and record: {(during.Count == 0 ? "none" : string.Join("; ", during))}"
                    + (result.LateExpiries.Count < 3 ? BrokerWarnings(run, due, expiry.At) : ""));
            }
        }

        lags.Sort();
        result.ExpiredLeases = lags.Count;
        result.MaxExpiryLag = lags.Count > 0 ? lags[^1] : TimeSpan.Zero;
        result.P99ExpiryLag = lags.Count > 0 ? lags[(int)Math.Min(lags.Count - 1, Math.Ceiling(lags.Count * 0.99) - 1)] : TimeSpan.Zero;
        result.ExpiredLaterThan1s = lags.Count(l => l > TimeSpan.FromSeconds(1));

        // (3) every token has a lease (checked above) and a mint record in the audit chain.
        foreach (var token in tokens.Where(t => !minted.Contains(t.Jti)))
        {
            result.Violations.Add($"(3) token {token.Jti} of lease {token.LeaseId} (acknowledged {token.Acked:O}) has no mint record (token.minted / lease.renewed) in the audit chain");
        }

        // (1) in-run introspections: never active after the end was acknowledged, the deadline (+ bound) or a quarantine.
        var introspections = history.Introspections.ToList();
        result.InRunIntrospections = introspections.Count;
        foreach (var seen in introspections.Where(i => i.Active))
        {
            var lease = history.Leases[seen.Token.LeaseId];
            var finalDeadline = final.GetValueOrDefault(lease.LeaseId)?.Deadline?.ToDateTimeOffset() ?? lease.Deadline;
            if (lease.EndAcked is { } end && seen.Sent > end.At)
            {
                result.Violations.Add($"(1) {seen.Broker} said active at {seen.Sent:O} for a token of lease {lease.LeaseId}, '{end.State}' acknowledged at {end.At:O}");
            }

            if (seen.Sent > finalDeadline + ClockBound || seen.Sent > seen.Token.Expires + ClockBound)
            {
                result.Violations.Add($"(1)(6) {seen.Broker} said active at {seen.Sent:O} for a token of lease {lease.LeaseId} past its deadline {finalDeadline:O} / exp {seen.Token.Expires:O}");
            }

            foreach (var q in quarantines.Where(q => q.AgentId == lease.AgentId && lease.Opened < q.Sent && seen.Sent > q.Acked))
            {
                result.Violations.Add($"(1) {seen.Broker} said active at {seen.Sent:O} for a token of quarantined {lease.AgentId} (quarantine acknowledged {q.Acked:O})");
            }
        }

        // (1) in-run offline validations: never valid once the validator has heard from the feed well after the end was acknowledged.
        var validations = history.Validations.ToList();
        result.InRunValidations = validations.Count;
        foreach (var check in validations.Where(v => v.Valid))
        {
            var lease = history.Leases[check.Token.LeaseId];
            if (lease.EndAcked is { } end && check.At > end.At && check.CurrentAsOf > end.At + ValidatorCatchUpAllowance)
            {
                result.Violations.Add($"(1) the offline validator accepted a token of lease {lease.LeaseId} at {check.At:O}, '{end.State}' acknowledged at {end.At:O}, feed current as of {check.CurrentAsOf:O} (its last heartbeat)");
            }

            foreach (var q in quarantines.Where(q => q.AgentId == lease.AgentId && lease.Opened < q.Sent && check.At > q.Acked && check.CurrentAsOf > q.Acked!.Value + ValidatorCatchUpAllowance))
            {
                result.Violations.Add($"(1) the offline validator accepted a token of quarantined {lease.AgentId} at {check.At:O} (quarantine acknowledged {q.Acked:O})");
            }
        }

        // (1) after the run: a sample of tokens on every replica, and on the offline validator once caught up.
        var sample = tokens.OrderBy(t => t.Jti, StringComparer.Ordinal).Take(120).ToList();
        foreach (var replica in run.Replicas)
        {
            var client = replica.ClientFor("system:serviceaccount:apis:tickets");
            foreach (var token in sample)
            {
                var answer = await Retry(() => client.IntrospectAsync(token.Token));
                result.FinalIntrospections++;
                if (answer.Active)
                {
                    result.Violations.Add($"(1) replica {replica.Name} accepts a token of lease {token.LeaseId} after the run (lease {final.GetValueOrDefault(token.LeaseId)?.State})");
                }
            }
        }

        var syncDeadline = DateTimeOffset.UtcNow.AddSeconds(20);
        while (!run.ValidatorSync.IsCaughtUp && DateTimeOffset.UtcNow < syncDeadline)
        {
            await Task.Delay(100);
        }

        foreach (var token in sample)
        {
            result.ValidatorChecks++;
            if (run.Validator.Validate(token.Token, DateTimeOffset.UtcNow) is { IsValid: true })
            {
                result.Violations.Add($"(1) the offline validator accepts a token of lease {token.LeaseId} after catching up");
            }
        }

        var catchUps = history.ValidatorCatchUp.ToList();
        result.ValidatorRestores = catchUps.Count;
        result.MaxValidatorCatchUp = catchUps.Count > 0 ? catchUps.Max() : null;
        result.Violations.AddRange(history.ValidatorMisses.Select(m => "(1) offline validator: " + m));
        result.Findings.AddRange(history.Findings);
        await ApprovalChecker.CheckAsync(run, result);
        return result;
    }

    internal static async Task<Lease?> FinalStateAsync(Client.CredBrokerOperatorClient operators, string leaseId)
    {
        try
        {
            return await Retry(() => operators.GetLeaseAsync(leaseId));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Retries while the broker answers UNAVAILABLE or DEADLINE_EXCEEDED (it is healing), for up to 30 s.</summary>
    internal static async Task<T> Retry<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }
}
