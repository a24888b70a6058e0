using System.Globalization;
using System.Text;
using CredBroker.Contracts.V1;
using CredBroker.Core.Policy;
using Google.Protobuf.WellKnownTypes;
using static CredBroker.Server.WebConsole.Html;

namespace CredBroker.Server.WebConsole;

/// <summary>The current policy (version, agents), a hypothetical request explained rule by rule, a pasted candidate file analyzed.</summary>
internal static class PolicyPage
{
    public static void Map(RouteGroupBuilder console)
    {
        console.MapGet("/policy", (HttpContext http, PolicyHolder policy) => Render(http, policy, null, null));
        console.MapPost("/policy/explain", async (HttpContext http, ConsoleOperations ops, PolicyHolder policy) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new ExplainDecisionRequest
            {
                AgentId = form["agent"].ToString(),
                Audience = form["audience"].ToString(),
                IncludeHoldings = form["holdings"].ToString() == "on",
            };
            request.Scopes.AddRange(form["scopes"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            foreach (var line in form["context"].ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    return Render(http, policy, form, null, $"Context label '{line}' must have the form key=value.", StatusCodes.Status400BadRequest);
                }

                request.Context[line[..eq].Trim()] = line[(eq + 1)..].Trim();
            }

            if (form["ttl"].ToString() is { Length: > 0 } ttl)
            {
                if (!TryDuration(ttl, out var duration))
                {
                    return Render(http, policy, form, null, $"TTL '{ttl}' is not a duration (e.g. 10m, 1h, 00:30:00).", StatusCodes.Status400BadRequest);
                }

                request.Ttl = Duration.FromTimeSpan(duration);
            }

            var outcome = await ops.RunAsync(http, "ExplainDecision", (s, c) => s.ExplainDecision(request, c));
            return outcome.Ok ? Render(http, policy, form, Explained(outcome.Value!)) : Render(http, policy, form, null, outcome.Refusal, outcome.HttpStatus);
        });
        console.MapPost("/policy/analyze", async (HttpContext http, ConsoleOperations ops, PolicyHolder policy) =>
        {
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            var request = new AnalyzePolicyRequest { CandidateYaml = form["candidate"].ToString() };
            var outcome = await ops.RunAsync(http, "AnalyzePolicy", (s, c) => s.AnalyzePolicy(request, c));
            return outcome.Ok ? Render(http, policy, form, Analyzed(outcome.Value!)) : Render(http, policy, form, null, outcome.Refusal, outcome.HttpStatus);
        });
        console.MapPost("/policy/reload", async (HttpContext http, ConsoleOperations ops, PolicyHolder policy) =>
        {
            var outcome = await ops.RunAsync(http, "ReloadPolicy", (s, c) => s.ReloadPolicy(new ReloadPolicyRequest(), c));
            if (!outcome.Ok)
            {
                return Render(http, policy, null, null, outcome.Refusal, outcome.HttpStatus);
            }

            var r = outcome.Value!;
            return r.Applied
                ? Done(http, "/policy", $"Policy reloaded: version {r.Version}, {r.Agents} agents.")
                : Render(http, policy, null, null, "The policy file was not applied (the previous policy stays): " + string.Join("; ", r.Errors.Select(e => $"{e.File}:{e.Line}:{e.Column} {e.Message}")), StatusCodes.Status200OK);
        });
    }

    private static IResult Render(HttpContext http, PolicyHolder policy, IFormCollection? form, string? result, string? message = null, int status = StatusCodes.Status200OK, bool error = true)
    {
        var user = ConsoleUser.From(http.User)!;
        if (!ConsoleOperations.Allows(user, "ExplainDecision"))
        {
            return Page(http, "Policy", string.Empty, $"Viewing the policy needs the operator role 'viewer'; '{user.Subject}' has: {user.RoleList}.", error: true, status: StatusCodes.Status403Forbidden);
        }

        var current = policy.Current;
        var antiforgery = Antiforgery(http);
        var html = new StringBuilder();
        html.Append(Dl(("Version", $"<code>{E(current.Version)}</code>"), ("Loaded", Time(policy.LoadedAt)), ("Agents", current.Agents.All.Count.ToString(CultureInfo.InvariantCulture))));
        if (ConsoleOperations.Allows(user, "ReloadPolicy"))
        {
            html.Append($"<form method=\"post\" action=\"/policy/reload\" class=\"inline\">{antiforgery}<button type=\"submit\">Reload the policy file</button></form>");
        }

        if (result is not null)
        {
            html.Append($"<section class=\"card result\" aria-labelledby=\"result-title\" id=\"result\">{result}</section>");
        }

        html.Append("<table><caption>Agents</caption><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">Owner</th><th scope=\"col\">Audiences</th><th scope=\"col\">Allowed</th><th scope=\"col\">Needs approval</th><th scope=\"col\">Disallowed</th><th scope=\"col\">Max token TTL</th></tr></thead><tbody>");
        foreach (var a in current.Agents.All.OrderBy(a => a.Id, StringComparer.Ordinal))
        {
            html.Append($"<tr><th scope=\"row\">{E(a.Id)}</th><td>{E(a.Owner)}</td><td>{Scopes(a.Audiences)}</td><td>{Scopes(a.AllowedScopes.Order())}</td><td>{Scopes(a.ApprovalScopes.Order())}</td><td>{Scopes(a.DisallowedScopes.Order())}</td><td>{a.MaxTokenTtl}</td></tr>");
        }

        html.Append("</tbody></table>");
        string V(string key) => E(form?[key].ToString());
        html.Append($"<div class=\"columns\"><form method=\"post\" action=\"/policy/explain\" class=\"card\">{antiforgery}<h2>Explain a request</h2>")
            .Append("<label for=\"x-agent\">Agent</label><select id=\"x-agent\" name=\"agent\">");
        foreach (var a in current.Agents.All.OrderBy(a => a.Id, StringComparer.Ordinal))
        {
            html.Append($"<option value=\"{E(a.Id)}\"{(form?["agent"].ToString() == a.Id ? " selected" : "")}>{E(a.Id)}</option>");
        }

        html.Append("</select>")
            .Append($"<label for=\"x-scopes\">Scopes (space-separated)</label><input id=\"x-scopes\" name=\"scopes\" value=\"{V("scopes")}\" autocomplete=\"off\">")
            .Append($"<label for=\"x-audience\">Audience</label><input id=\"x-audience\" name=\"audience\" value=\"{V("audience")}\" autocomplete=\"off\">")
            .Append($"<label for=\"x-ttl\">TTL (optional, e.g. 10m)</label><input id=\"x-ttl\" name=\"ttl\" value=\"{V("ttl")}\" autocomplete=\"off\">")
            .Append($"<label for=\"x-context\">Context labels (key=value, one a line)</label><textarea id=\"x-context\" name=\"context\" rows=\"3\">{V("context")}</textarea>")
            .Append($"<label for=\"x-holdings\" class=\"check\"><input type=\"checkbox\" id=\"x-holdings\" name=\"holdings\"{(form?["holdings"].ToString() == "on" ? " checked" : "")}> Include what the agent holds now (toxic combinations)</label>")
            .Append("<button type=\"submit\" class=\"primary\">Explain</button></form>")
            .Append($"<form method=\"post\" action=\"/policy/analyze\" class=\"card\">{antiforgery}<h2>Analyze a candidate policy file</h2>")
            .Append($"<label for=\"candidate\">Candidate agents.yaml (empty = the current policy)</label><textarea id=\"candidate\" name=\"candidate\" rows=\"12\" spellcheck=\"false\">{V("candidate")}</textarea>")
            .Append("<button type=\"submit\" class=\"primary\">Analyze</button></form></div>");
        return Page(http, "Policy", html.ToString(), message, error: message is not null && error, status: status);
    }

    private static string Explained(ExplainDecisionResponse r)
    {
        var html = new StringBuilder($"<h2 id=\"result-title\">Decision: <span class=\"outcome {E(r.Outcome)}\">{E(r.Outcome)}</span></h2>");
        html.Append(Dl(("Reason", E(r.Reason)), ("Rules", Scopes(r.RuleIds)), ("Granted", Scopes(r.GrantedScopes)), ("Dropped", Scopes(r.DroppedScopes)),
            ("Needs approval", Scopes(r.ApprovalScopes)), ("Audience", E(r.Audience)), ("Lease TTL", E(r.LeaseTtl?.ToTimeSpan().ToString())), ("Policy version", $"<code>{E(r.PolicyVersion)}</code>")));
        html.Append("<ol class=\"steps\">");
        foreach (var step in r.Steps)
        {
            html.Append($"<li><code>{E(step.RuleId)}</code> <strong>{E(step.Effect)}</strong> {E(step.Detail)}</li>");
        }

        return html.Append("</ol>").ToString();
    }

    private static string Analyzed(AnalyzePolicyResponse r)
    {
        var html = new StringBuilder($"<h2 id=\"result-title\">Analysis{(r.Version.Length > 0 ? $" of version <code>{E(r.Version)}</code>" : string.Empty)}: {r.Findings.Count} findings</h2>");
        if (r.Findings.Count == 0)
        {
            return html.Append("<p>No finding.</p>").ToString();
        }

        html.Append("<table><caption>Findings</caption><thead><tr><th scope=\"col\">Kind</th><th scope=\"col\">Agent</th><th scope=\"col\">Rule</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
        foreach (var f in r.Findings)
        {
            html.Append($"<tr><td>{E(f.Kind)}</td><td>{E(f.AgentId)}</td><td>{E(f.RuleId)}</td><td>{E(f.Detail)}</td></tr>");
        }

        return html.Append("</tbody></table>").ToString();
    }

    private static bool TryDuration(string text, out TimeSpan duration)
    {
        text = text.Trim();
        if (text.Length > 1 && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0)
        {
            switch (text[^1])
            {
                case 's': duration = TimeSpan.FromSeconds(n); return true;
                case 'm': duration = TimeSpan.FromMinutes(n); return true;
                case 'h': duration = TimeSpan.FromHours(n); return true;
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out duration) && duration > TimeSpan.Zero;
    }
}
