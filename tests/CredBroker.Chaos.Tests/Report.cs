using System.Globalization;
using System.Text;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>The figures of a chaos run as Markdown, written between markers into docs/reliability.md (or any file).</summary>
public static class Report
{
    public const string Begin = "<!-- chaos-figures:begin -->";
    public const string End = "<!-- chaos-figures:end -->";

    public static string Markdown(IReadOnlyList<CheckResult> results, string command, DateTimeOffset at, int seed)
    {
        var md = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        md.AppendLine(c, $"Run of {at:yyyy-MM-dd HH:mm} UTC, seed {seed}: `{command}`.").AppendLine();
        md.AppendLine("| Topology | Setting | Duration | Operations | Tokens | Leases | Acked ends (complete/revoke) | Acked quarantines | Lost | Max expiry lag (p99) | Expired > 1 s late | Validator catch-up after restore (max) | Audit | Violations |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var lost = r.LostEnds + r.LostRenewals + r.LostQuarantineRevocations;
            md.AppendLine(c, $"| {r.Topology} | {r.Setting} | {r.Duration.TotalSeconds:0} s | {r.Operations} | {r.Tokens} | {r.Leases} | {r.AcknowledgedEnds} | {r.AcknowledgedQuarantines} | "
                + $"{lost} ({r.LostEnds} ends, {r.LostRenewals} renewals, {r.LostQuarantineRevocations} quarantine revocations) | {Ms(r.MaxExpiryLag)} ({Ms(r.P99ExpiryLag)}) over {r.ExpiredLeases} | {r.ExpiredLaterThan1s} | "
                + $"{(r.MaxValidatorCatchUp is { } v ? Ms(v) : "n/a")} over {r.ValidatorRestores} restores | {(r.AuditIntact ? "intact" : "BROKEN")} ({r.AuditRecords} records) | {r.Violations.Count} |");
        }

        ApprovalTable(md, results);
        md.AppendLine().AppendLine("Faults injected, by kind:").AppendLine();
        foreach (var r in results)
        {
            md.AppendLine("- " + r.Topology + ": " + string.Join(", ", r.FaultsByKind.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => k.Key + " × " + k.Value.ToString(c))));
        }

        md.AppendLine().AppendLine("Availability during each fault (calls sent while it was in force, by answer):").AppendLine();
        md.AppendLine("| Topology | Fault | Calls | OK | UNAVAILABLE | DEADLINE_EXCEEDED | FAILED_PRECONDITION | other |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            foreach (var (fault, byStatus) in r.Availability.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                var total = byStatus.Values.Sum();
                int Of(StatusCode s) => byStatus.GetValueOrDefault(s);
                var other = total - Of(StatusCode.OK) - Of(StatusCode.Unavailable) - Of(StatusCode.DeadlineExceeded) - Of(StatusCode.FailedPrecondition);
                var named = string.Join(", ", byStatus.Where(s => !CheckResult.Columns.Contains(s.Key)).OrderBy(s => s.Key.ToString(), StringComparer.Ordinal)
                    .Select(s => StatusName(s.Key) + " " + s.Value.ToString(c)));
                md.AppendLine(c, $"| {r.Topology} | {fault} | {total} | {Share(Of(StatusCode.OK), total)} | {Share(Of(StatusCode.Unavailable), total)} | "
                    + $"{Share(Of(StatusCode.DeadlineExceeded), total)} | {Share(Of(StatusCode.FailedPrecondition), total)} | {Share(other, total)}{(named.Length > 0 ? ": " + named : "")} |");
            }
        }

        var others = results.SelectMany(r => r.OtherAnswers.Select(o => (r.Topology, o.Key, o.Value))).ToList();
        if (others.Count > 0)
        {
            md.AppendLine().AppendLine("The \"other\" answers (status, call, detail; each a deliberate refusal unless the findings below say otherwise):").AppendLine();
            foreach (var (topology, (status, call, detail), count) in others.OrderBy(o => o.Topology, StringComparer.Ordinal).ThenByDescending(o => o.Value))
            {
                md.AppendLine(c, $"- {topology}: {StatusName(status)} × {count} to {call}: {(detail.Length > 160 ? detail[..160] + "…" : detail)}");
            }
        }

        var late = results.SelectMany(r => r.LateExpiries.Take(10).Select(l => $"{r.Topology}: {l}")).ToList();
        if (late.Count > 0)
        {
            md.AppendLine().AppendLine("Expiries recorded more than 1 s late (up to 10 per topology):").AppendLine();
            foreach (var l in late)
            {
                md.AppendLine("- " + l);
            }
        }

        md.AppendLine().AppendLine(c, $"Checked: {results.Sum(r => r.InRunIntrospections)} in-run Introspect answers, {results.Sum(r => r.InRunValidations)} in-run offline validations, "
            + $"{results.Sum(r => r.FinalIntrospections)} Introspect calls and {results.Sum(r => r.ValidatorChecks)} offline validations after the run.");
        var violations = results.SelectMany(r => r.Violations.Select(v => $"{r.Topology}: {v}")).ToList();
        md.AppendLine().AppendLine(violations.Count == 0 ? "Invariants (1)-(7): no violation." : "Violations:").AppendLine();
        foreach (var v in violations.Take(50))
        {
            md.AppendLine("- " + v);
        }

        var findings = results.SelectMany(r => r.Findings.Select(f => $"{r.Topology}: {f}")).ToList();
        if (findings.Count > 0)
        {
            md.AppendLine().AppendLine("Other findings (not invariants):").AppendLine();
            foreach (var f in findings.Take(20))
            {
                md.AppendLine("- " + f.ReplaceLineEndings(" "));
            }
        }

        return md.ToString();
    }

    /// <summary>Writes <paramref name="markdown"/> between the markers of <paramref name="path"/> (the whole file when it has none).</summary>
    public static void Write(string path, string markdown)
    {
        var block = Begin + Environment.NewLine + markdown + End;
        if (File.Exists(path) && File.ReadAllText(path) is var text && text.IndexOf(Begin, StringComparison.Ordinal) is var start and >= 0
            && text.IndexOf(End, start, StringComparison.Ordinal) is var end and >= 0)
        {
            File.WriteAllText(path, text[..start] + block + text[(end + End.Length)..]);
        }
        else
        {
            File.WriteAllText(path, block + Environment.NewLine);
        }
    }

    private static void ApprovalTable(StringBuilder md, IReadOnlyList<CheckResult> results)
    {
        var c = CultureInfo.InvariantCulture;
        md.AppendLine().AppendLine("Approvals (agents waiting with WatchApproval on random replicas; an operator approving, narrowing, denying or letting them expire):").AppendLine();
        md.AppendLine("| Topology | Requested (acked) | Seen by the operator | Approved (narrowed) | Denied | Expired | Tokens delivered | Clear refusals | Watch streams (reconnects after a cut) | Lost |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            var a = r.Approvals;
            md.AppendLine(c, $"| {r.Topology} | {a.Requested} | {a.Listed} | {a.Approved} ({a.ApprovedNarrowed}) | {a.Denied} | {a.Expired} | {a.Tokens} | {a.Refusals} | {a.WatchStreams} ({a.Reconnects}) | {a.Lost} |");
        }
    }

    /// <summary>The gRPC name of a status (RESOURCE_EXHAUSTED, NOT_FOUND, ...).</summary>
    private static string StatusName(StatusCode status) =>
        string.Concat(status.ToString().Select((ch, i) => i > 0 && char.IsUpper(ch) ? "_" + ch : ch.ToString())).ToUpperInvariant();

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

    private static string Share(int part, int total) =>
        total == 0 ? "-" : part == 0 ? "0" : $"{part} ({100.0 * part / total:0.#} %)".ToString(CultureInfo.InvariantCulture);
}
