using System.Text;
using CredBroker.Contracts.V1;
using static CredBroker.Server.WebConsole.Html;

namespace CredBroker.Server.WebConsole;

/// <summary>Pending approvals, live (the list refreshes itself): approve, approve narrower, deny with a reason.</summary>
internal static class ApprovalsPage
{
    public static void Map(RouteGroupBuilder console)
    {
        console.MapGet("/approvals", (HttpContext http, ConsoleOperations ops) => RenderAsync(http, ops));
        console.MapGet("/approvals/list", async (HttpContext http, ConsoleOperations ops) =>
        {
            var (list, refusal) = await ListAsync(http, ops);
            return Fragment(refusal is null ? list : Alert(refusal));
        });
        console.MapPost("/approvals/{id}/approve", async (string id, HttpContext http, ConsoleOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new DecideApprovalRequest { ApprovalId = id, Verdict = DecideApprovalRequest.Types.Verdict.Approve, Reason = form["note"].ToString() };
            request.Scopes.AddRange(form["scope"].Where(s => !string.IsNullOrEmpty(s)).Select(s => s!));
            if (request.Scopes.Count == 0)
            {
                return await RenderAsync(http, ops, "Select at least one scope to approve (or deny the request).", error: true, status: StatusCodes.Status400BadRequest);
            }

            var outcome = await ops.RunAsync(http, "DecideApproval", (s, c) => s.DecideApproval(request, c));
            return outcome.Ok
                ? Done(http, "/approvals", $"Approved {id} with {string.Join(' ', outcome.Value!.Approval.GrantedScopes)}; the agent receives its token.")
                : await RenderAsync(http, ops, outcome.Refusal, error: true, status: outcome.HttpStatus);
        });
        console.MapPost("/approvals/{id}/deny", async (string id, HttpContext http, ConsoleOperations ops) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new DecideApprovalRequest { ApprovalId = id, Verdict = DecideApprovalRequest.Types.Verdict.Deny, Reason = form["reason"].ToString() };
            var outcome = await ops.RunAsync(http, "DecideApproval", (s, c) => s.DecideApproval(request, c));
            return outcome.Ok
                ? Done(http, "/approvals", $"Denied {id}: {request.Reason}")
                : await RenderAsync(http, ops, outcome.Refusal, error: true, status: outcome.HttpStatus);
        });
    }

    private static async Task<IResult> RenderAsync(HttpContext http, ConsoleOperations ops, string? message = null, bool error = false, int status = StatusCodes.Status200OK)
    {
        var (list, refusal) = await ListAsync(http, ops);
        var body = $"<p class=\"lead\">Requests waiting for a human decision. The list refreshes itself every few seconds.</p><div id=\"approvals\" data-live=\"/approvals/list\" aria-live=\"polite\">{(refusal is null ? list : Alert(refusal))}</div>";
        return Page(http, "Pending approvals", body, message, error, status);
    }

    private static async Task<(string Html, string? Refusal)> ListAsync(HttpContext http, ConsoleOperations ops)
    {
        var outcome = await ops.RunAsync(http, "ListApprovals", (s, c) => s.ListApprovals(new ListApprovalsRequest { PageSize = 200 }, c));
        if (!outcome.Ok)
        {
            return (string.Empty, outcome.Refusal);
        }

        var user = ConsoleUser.From(http.User)!;
        var canDecide = ConsoleOperations.Allows(user, "DecideApproval");
        var pending = outcome.Value!.Approvals.Where(a => a.State == "pending").OrderBy(a => a.ExpiresAt?.ToDateTimeOffset()).ToList();
        var html = new StringBuilder();
        html.Append(Incomplete(outcome.Value.UnreachableShards, "approval requests"));
        if (pending.Count == 0)
        {
            html.Append("<p class=\"empty\">No approval is pending.</p>");
        }

        if (!canDecide && pending.Count > 0)
        {
            html.Append($"<p class=\"hint\">You can see these requests; deciding them needs the approver role (you have: {E(user.RoleList)}).</p>");
        }

        var antiforgery = canDecide ? Antiforgery(http) : string.Empty;
        foreach (var a in pending)
        {
            var id = E(a.ApprovalId);
            html.Append($"<section class=\"card approval\" aria-labelledby=\"t-{id}\" data-approval=\"{id}\"><h2 id=\"t-{id}\">{E(a.AgentId)} · task {E(a.TaskId)}</h2>")
                .Append(Dl(
                    ("Approval id", $"<code>{id}</code>"), ("Agent", E(a.AgentId)), ("Owner", E(a.Owner)), ("Purpose", E(a.Purpose)), ("Audience", E(a.Audience)),
                    ("Requested scopes", Scopes(a.RequestedScopes)), ("Needs approval", Scopes(a.ApprovalScopes)),
                    ("Rules", Scopes(a.RuleIds)), ("Why", E(a.Reason)), ("Requested", Time(a.RequestedAt)), ("Expires", Time(a.ExpiresAt))));
            if (canDecide)
            {
                html.Append($"<div class=\"actions\"><form method=\"post\" action=\"/approvals/{U(a.ApprovalId)}/approve\" class=\"approve\">{antiforgery}")
                    .Append($"<fieldset><legend>Scopes to grant (untick to approve narrower)</legend>");
                var i = 0;
                foreach (var scope in a.RequestedScopes)
                {
                    var field = $"s-{id}-{i++}";
                    html.Append($"<label for=\"{field}\"><input type=\"checkbox\" id=\"{field}\" name=\"scope\" value=\"{E(scope)}\" checked> {E(scope)}</label>");
                }

                html.Append("</fieldset>")
                    .Append($"<label for=\"n-{id}\">Note (optional)</label><input type=\"text\" id=\"n-{id}\" name=\"note\" maxlength=\"512\" autocomplete=\"off\">")
                    .Append($"<button type=\"submit\" class=\"primary\">Approve</button></form>")
                    .Append($"<form method=\"post\" action=\"/approvals/{U(a.ApprovalId)}/deny\" class=\"deny\">{antiforgery}")
                    .Append($"<label for=\"r-{id}\">Reason for denial</label><input type=\"text\" id=\"r-{id}\" name=\"reason\" required maxlength=\"512\" autocomplete=\"off\">")
                    .Append("<button type=\"submit\" class=\"danger\">Deny</button></form></div>");
            }

            html.Append("</section>");
        }

        // The live refresh replaces the list only when this changes (not while the same requests are shown).
        var version = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(',', pending.Select(a => a.ApprovalId)) + "|" + string.Join(',', outcome.Value.UnreachableShards))))[..16];
        return ($"<div data-version=\"{version}\">{html}</div>", null);
    }
}
