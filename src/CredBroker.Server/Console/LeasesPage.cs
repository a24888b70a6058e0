using System.Text;
using CredBroker.Contracts.V1;
using static CredBroker.Server.WebConsole.Html;

namespace CredBroker.Server.WebConsole;

/// <summary>Leases: filter by agent, owner and state; a lease's detail with its tokens' jti and audit trail; revoke with a reason.</summary>
internal static class LeasesPage
{
    private static readonly string[] States = ["", "pending_approval", "active", "completed", "expired", "revoked"];

    public static void Map(RouteGroupBuilder console)
    {
        console.MapGet("/leases", ListAsync);
        console.MapGet("/leases/{id}", (string id, HttpContext http, ConsoleOperations ops) => DetailAsync(id, http, ops));
        console.MapPost("/leases/{id}/revoke", async (string id, HttpContext http, ConsoleOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new RevokeLeaseRequest { LeaseId = id, Reason = form["reason"].ToString() };
            var outcome = await ops.RunAsync(http, "RevokeLease", (s, c) => s.RevokeLease(request, c));
            return outcome.Ok
                ? Done(http, "/leases/" + U(id), outcome.Value!.Changed ? $"Lease {id} revoked: every token minted under it stops working." : $"Lease {id} had already ended ({outcome.Value.Lease.State}).")
                : await DetailAsync(id, http, ops, outcome.Refusal, error: true, status: outcome.HttpStatus);
        });
    }

    private static async Task<IResult> ListAsync(HttpContext http, ConsoleOperations ops, string? agent, string? owner, string? state, string? page)
    {
        var request = new ListLeasesRequest { AgentId = agent ?? "", Owner = owner ?? "", State = state ?? "", PageSize = 50, PageToken = page ?? "" };
        var outcome = await ops.RunAsync(http, "ListLeases", (s, c) => s.ListLeases(request, c));
        var html = new StringBuilder();
        html.Append("<form method=\"get\" action=\"/leases\" class=\"filters\" role=\"search\" aria-label=\"Filter leases\">")
            .Append($"<label for=\"f-agent\">Agent</label><input id=\"f-agent\" name=\"agent\" value=\"{E(agent)}\" autocomplete=\"off\">")
            .Append($"<label for=\"f-owner\">Owner</label><input id=\"f-owner\" name=\"owner\" value=\"{E(owner)}\" autocomplete=\"off\">")
            .Append("<label for=\"f-state\">State</label><select id=\"f-state\" name=\"state\">");
        foreach (var s in States)
        {
            html.Append($"<option value=\"{s}\"{(s == (state ?? "") ? " selected" : "")}>{(s.Length == 0 ? "any" : s)}</option>");
        }

        html.Append("</select><button type=\"submit\">Filter</button></form>");
        if (!outcome.Ok)
        {
            return Page(http, "Leases", html.ToString(), outcome.Refusal, error: true, status: outcome.HttpStatus);
        }

        var leases = outcome.Value!.Leases;
        html.Append(Incomplete(outcome.Value.UnreachableShards, "leases"));
        if (leases.Count == 0)
        {
            html.Append("<p class=\"empty\">No lease matches.</p>");
        }
        else
        {
            html.Append("<table><caption>Leases, newest retention first</caption><thead><tr><th scope=\"col\">Lease</th><th scope=\"col\">Agent</th><th scope=\"col\">Task</th><th scope=\"col\">Owner</th><th scope=\"col\">State</th><th scope=\"col\">Scopes</th><th scope=\"col\">Deadline</th></tr></thead><tbody>");
            foreach (var l in leases)
            {
                html.Append($"<tr><td><a href=\"/leases/{U(l.LeaseId)}\"><code>{E(l.LeaseId)}</code></a></td><td>{E(l.AgentId)}</td><td>{E(l.TaskId)}</td><td>{E(l.Owner)}</td><td class=\"state {E(l.State)}\">{E(l.State)}</td><td>{Scopes(l.Scopes)}</td><td>{Time(l.Deadline)}</td></tr>");
            }

            html.Append("</tbody></table>");
        }

        if (outcome.Value.NextPageToken.Length > 0)
        {
            html.Append($"<p><a href=\"/leases?agent={U(agent)}&amp;owner={U(owner)}&amp;state={U(state)}&amp;page={U(outcome.Value.NextPageToken)}\">Next page</a></p>");
        }

        return Page(http, "Leases", html.ToString());
    }

    private static async Task<IResult> DetailAsync(string id, HttpContext http, ConsoleOperations ops, string? message = null, bool error = false, int status = StatusCodes.Status200OK)
    {
        var lease = await ops.RunAsync(http, "GetLease", (s, c) => s.GetLease(new GetLeaseRequest { LeaseId = id }, c));
        if (!lease.Ok)
        {
            return Page(http, "Lease", "<p><a href=\"/leases\">Back to leases</a></p>", message ?? lease.Refusal, error: true, status: message is null ? lease.HttpStatus : status);
        }

        var l = lease.Value!;
        var trail = await ops.RunAsync(http, "QueryAudit", async (s, c) =>
        {
            var writer = new CollectingWriter<Contracts.V1.AuditRecord>();
            await s.QueryAudit(new QueryAuditRequest { LeaseId = id, Limit = 500 }, writer, c);
            return writer.Items;
        });
        var html = new StringBuilder();
        html.Append("<p><a href=\"/leases\">Back to leases</a></p>")
            .Append(Dl(
                ("Lease id", $"<code>{E(l.LeaseId)}</code>"), ("State", $"<span class=\"state {E(l.State)}\">{E(l.State)}</span>"), ("Agent", E(l.AgentId)), ("Task", E(l.TaskId)),
                ("Owner", E(l.Owner)), ("Purpose", E(l.Purpose)), ("Audience", E(l.Audience)), ("Scopes", Scopes(l.Scopes)),
                ("Created", Time(l.CreatedAt)), ("Deadline", Time(l.Deadline)), ("Max deadline", Time(l.MaxDeadline)), ("Ended", Time(l.EndedAt)), ("Generation", l.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        var user = ConsoleUser.From(http.User)!;
        if (l.State is "active" or "pending_approval" && ConsoleOperations.Allows(user, "RevokeLease"))
        {
            html.Append($"<form method=\"post\" action=\"/leases/{U(l.LeaseId)}/revoke\" class=\"revoke card\">{Antiforgery(http)}<h2>Revoke</h2>")
                .Append("<label for=\"revoke-reason\">Reason for revocation</label><input type=\"text\" id=\"revoke-reason\" name=\"reason\" required maxlength=\"512\" autocomplete=\"off\">")
                .Append("<button type=\"submit\" class=\"danger\">Revoke lease</button></form>");
        }

        if (!trail.Ok)
        {
            html.Append(Alert(trail.Refusal!));
        }
        else
        {
            var tokens = trail.Value!.Where(r => r.Event.Details.ContainsKey("jti")).ToList();
            html.Append("<h2>Tokens</h2>");
            if (tokens.Count == 0)
            {
                html.Append("<p class=\"empty\">No token was minted under this lease.</p>");
            }
            else
            {
                html.Append("<table><caption>Tokens minted under this lease (by jti; the tokens themselves are never stored)</caption><thead><tr><th scope=\"col\">jti</th><th scope=\"col\">Event</th><th scope=\"col\">Scopes</th><th scope=\"col\">Expires</th><th scope=\"col\">When</th></tr></thead><tbody>");
                foreach (var r in tokens)
                {
                    html.Append($"<tr><td><code class=\"jti\">{E(r.Event.Details["jti"])}</code></td><td>{E(r.Event.Type)}</td><td>{Scopes(r.Event.ScopesGranted)}</td><td>{E(r.Event.Details.GetValueOrDefault("exp"))}</td><td>{Time(r.Event.Time)}</td></tr>");
                }

                html.Append("</tbody></table>");
            }

            html.Append("<h2>Audit trail</h2>").Append(AuditPage.Table(trail.Value!, "The audit records of this lease"));
        }

        return Page(http, $"Lease {l.LeaseId}", html.ToString(), message, error, status);
    }
}
