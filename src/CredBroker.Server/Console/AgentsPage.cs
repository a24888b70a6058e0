using System.Text;
using CredBroker.Contracts.V1;
using CredBroker.Core.Policy;
using CredBroker.Server.Metrics;
using static CredBroker.Server.WebConsole.Html;

namespace CredBroker.Server.WebConsole;

/// <summary>The policy's agents with their quarantine status: quarantine (revokes everything, blocks issuance) and release.</summary>
internal static class AgentsPage
{
    public static void Map(RouteGroupBuilder console)
    {
        console.MapGet("/agents", (HttpContext http, ConsoleOperations ops, PolicyHolder policy, TimedLeaseStore store) => RenderAsync(http, ops, policy, store));
        console.MapPost("/agents/{id}/quarantine", async (string id, HttpContext http, ConsoleOperations ops, PolicyHolder policy, TimedLeaseStore store) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new QuarantineAgentRequest { AgentId = id, Reason = form["reason"].ToString() };
            var outcome = await ops.RunAsync(http, "QuarantineAgent", (s, c) => s.QuarantineAgent(request, c));
            return outcome.Ok
                ? Done(http, "/agents", $"{id} is quarantined: {outcome.Value!.LeasesRevoked} leases revoked, no token is issued until it is released.")
                : await RenderAsync(http, ops, policy, store, outcome.Refusal, error: true, status: outcome.HttpStatus);
        });
        console.MapPost("/agents/{id}/release", async (string id, HttpContext http, ConsoleOperations ops, PolicyHolder policy, TimedLeaseStore store) =>
        {
            var outcome = await ops.RunAsync(http, "ReleaseAgent", (s, c) => s.ReleaseAgent(new ReleaseAgentRequest { AgentId = id }, c));
            return outcome.Ok
                ? Done(http, "/agents", outcome.Value!.Released ? $"{id} is released." : $"{id} was not quarantined.")
                : await RenderAsync(http, ops, policy, store, outcome.Refusal, error: true, status: outcome.HttpStatus);
        });
    }

    private static async Task<IResult> RenderAsync(HttpContext http, ConsoleOperations ops, PolicyHolder policy, TimedLeaseStore store,
        string? message = null, bool error = false, int status = StatusCodes.Status200OK)
    {
        var user = ConsoleUser.From(http.User)!;
        // Reading the agent list needs what reading leases needs.
        if (!ConsoleOperations.Allows(user, "ListLeases"))
        {
            return Page(http, "Agents", string.Empty, $"Viewing agents needs the operator role 'viewer'; '{user.Subject}' has: {user.RoleList}.", error: true, status: StatusCodes.Status403Forbidden);
        }

        var canAct = ConsoleOperations.Allows(user, "QuarantineAgent");
        var antiforgery = canAct ? Antiforgery(http) : string.Empty;
        var html = new StringBuilder("<table><caption>Agents in the current policy</caption><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">Owner</th><th scope=\"col\">Purpose</th><th scope=\"col\">Status</th>");
        html.Append(canAct ? "<th scope=\"col\">Action</th>" : string.Empty).Append("</tr></thead><tbody>");
        foreach (var agent in policy.Current.Agents.All.OrderBy(a => a.Id, StringComparer.Ordinal))
        {
            var since = await store.GetAgentStatusAsync(agent.Id, http.RequestAborted);
            var id = E(agent.Id);
            html.Append($"<tr><th scope=\"row\">{id}</th><td>{E(agent.Owner)}</td><td>{E(agent.Purpose)}</td><td>{(since is { } s ? "quarantined since " + Time(s) : "active")}</td>");
            if (canAct)
            {
                html.Append("<td>");
                html.Append(since is null
                    ? $"<form method=\"post\" action=\"/agents/{U(agent.Id)}/quarantine\" class=\"inline\">{antiforgery}<label for=\"q-{id}\">Reason to quarantine {id}</label><input type=\"text\" id=\"q-{id}\" name=\"reason\" required maxlength=\"512\" autocomplete=\"off\"><button type=\"submit\" class=\"danger\">Quarantine</button></form>"
                    : $"<form method=\"post\" action=\"/agents/{U(agent.Id)}/release\" class=\"inline\">{antiforgery}<button type=\"submit\">Release {id}</button></form>");
                html.Append("</td>");
            }

            html.Append("</tr>");
        }

        html.Append("</tbody></table>");
        return Page(http, "Agents", html.ToString(), message, error, status);
    }
}
