using System.Globalization;
using System.Text;
using CredBroker.Contracts.V1;
using static CredBroker.Server.WebConsole.Html;

namespace CredBroker.Server.WebConsole;

/// <summary>The audit trail: a live tail with filters, and chain verification on demand.</summary>
internal static class AuditPage
{
    public static void Map(RouteGroupBuilder console)
    {
        console.MapGet("/audit", (HttpContext http, ConsoleOperations ops, string? agent, string? lease, string? type, int? tail) => RenderAsync(http, ops, agent, lease, type, tail));
        console.MapGet("/audit/rows", async (HttpContext http, ConsoleOperations ops, string? agent, string? lease, string? type, int? tail) =>
        {
            var outcome = await QueryAsync(http, ops, agent, lease, type, tail);
            return Fragment(outcome.Ok ? Live(outcome.Value!) : Alert(outcome.Refusal!));
        });
        console.MapPost("/audit/verify", async (HttpContext http, ConsoleOperations ops) =>
        {
            var outcome = await ops.RunAsync(http, "VerifyAudit", (s, c) => s.VerifyAudit(new VerifyAuditRequest(), c));
            if (!outcome.Ok)
            {
                return await RenderAsync(http, ops, null, null, null, null, outcome.Refusal, error: true, status: outcome.HttpStatus);
            }

            var v = outcome.Value!;
            var text = v.Intact
                ? $"The audit chain is intact: {v.RecordsChecked} records checked (sequence {v.FirstSequence}–{v.LastSequence}), {v.CheckpointsVerified} signed checkpoints verified."
                : $"The audit chain is BROKEN at sequence {v.FirstBrokenSequence}: {v.Problem} ({v.RecordsChecked} records checked).";
            return await RenderAsync(http, ops, null, null, null, null, text, error: !v.Intact);
        });
    }

    private static Task<Outcome<List<Contracts.V1.AuditRecord>>> QueryAsync(HttpContext http, ConsoleOperations ops, string? agent, string? lease, string? type, int? tail)
    {
        var request = new QueryAuditRequest { AgentId = agent ?? "", LeaseId = lease ?? "", Tail = Math.Clamp(tail ?? 200, 1, 5000), Limit = 1000 };
        if (type is { Length: > 0 })
        {
            request.EventTypes.Add(type);
        }

        return ops.RunAsync(http, "QueryAudit", async (s, c) =>
        {
            var writer = new CollectingWriter<Contracts.V1.AuditRecord>();
            await s.QueryAudit(request, writer, c);
            writer.Items.Reverse();
            return writer.Items;
        });
    }

    private static async Task<IResult> RenderAsync(HttpContext http, ConsoleOperations ops, string? agent, string? lease, string? type, int? tail,
        string? message = null, bool error = false, int status = StatusCodes.Status200OK)
    {
        var html = new StringBuilder();
        html.Append($"<form method=\"post\" action=\"/audit/verify\" class=\"inline\">{Antiforgery(http)}<button type=\"submit\">Verify the audit chain</button></form>")
            .Append("<form method=\"get\" action=\"/audit\" class=\"filters\" role=\"search\" aria-label=\"Filter audit records\">")
            .Append($"<label for=\"a-agent\">Agent</label><input id=\"a-agent\" name=\"agent\" value=\"{E(agent)}\" autocomplete=\"off\">")
            .Append($"<label for=\"a-lease\">Lease</label><input id=\"a-lease\" name=\"lease\" value=\"{E(lease)}\" autocomplete=\"off\">")
            .Append($"<label for=\"a-type\">Event type</label><input id=\"a-type\" name=\"type\" value=\"{E(type)}\" placeholder=\"e.g. lease.revoked\" autocomplete=\"off\">")
            .Append($"<label for=\"a-tail\">Last records</label><input id=\"a-tail\" name=\"tail\" type=\"number\" min=\"1\" max=\"5000\" value=\"{(tail ?? 200).ToString(CultureInfo.InvariantCulture)}\">")
            .Append("<button type=\"submit\">Filter</button></form>");
        var outcome = await QueryAsync(http, ops, agent, lease, type, tail);
        var query = $"agent={U(agent)}&amp;lease={U(lease)}&amp;type={U(type)}&amp;tail={(tail ?? 200).ToString(CultureInfo.InvariantCulture)}";
        html.Append($"<div id=\"audit-rows\" data-live=\"/audit/rows?{query}\" aria-live=\"off\">")
            .Append(outcome.Ok ? Live(outcome.Value!) : Alert(outcome.Refusal!))
            .Append("</div>");
        return Page(http, "Audit", html.ToString(), message, error, status);
    }

    /// <summary>The live tail: replaced by the refresh only when a newer record arrived.</summary>
    private static string Live(IReadOnlyList<Contracts.V1.AuditRecord> records) =>
        $"<div data-version=\"{(records.Count == 0 ? 0 : records[0].Sequence).ToString(CultureInfo.InvariantCulture)}\">{Table(records, "Audit records, newest first (live)")}</div>";

    public static string Table(IReadOnlyList<Contracts.V1.AuditRecord> records, string caption)
    {
        if (records.Count == 0)
        {
            return "<p class=\"empty\">No audit record matches.</p>";
        }

        var html = new StringBuilder();
        html.Append($"<table class=\"audit\"><caption>{E(caption)}</caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Time</th><th scope=\"col\">Event</th><th scope=\"col\">Agent</th><th scope=\"col\">Lease</th><th scope=\"col\">Scopes</th><th scope=\"col\">Caller / operator</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
        foreach (var r in records)
        {
            var e = r.Event;
            var lease = e.LeaseId.Length > 0 ? $"<a href=\"/leases/{U(e.LeaseId)}\"><code>{E(e.LeaseId)}</code></a>" : "—";
            var who = string.Join(" / ", new[] { e.Caller, e.Operator }.Where(w => w.Length > 0));
            html.Append($"<tr><td>{r.Sequence}</td><td>{Time(e.Time)}</td><td>{E(e.Type)}</td><td>{E(e.AgentId)}</td><td>{lease}</td><td>{Scopes(e.ScopesGranted.Count > 0 ? e.ScopesGranted : e.ScopesRequested)}</td><td>{E(who)}</td><td>{E(e.Reason)}</td></tr>");
        }

        return html.Append("</tbody></table>").ToString();
    }
}
