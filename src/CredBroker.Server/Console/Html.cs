using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;

namespace CredBroker.Server.WebConsole;

/// <summary>Server-rendered HTML: every value encoded, one layout, no inline script or style (the CSP forbids both).</summary>
internal static class Html
{
    private static readonly (string Path, string Label)[] Navigation =
    [
        ("/approvals", "Approvals"), ("/leases", "Leases"), ("/agents", "Agents"), ("/audit", "Audit"), ("/policy", "Policy"),
    ];

    public static string E(string? value) => HtmlEncoder.Default.Encode(value ?? string.Empty);

    public static string U(string? value) => UrlEncoder.Default.Encode(value ?? string.Empty);

    public static string Time(Timestamp? time) => time is null ? "—" : Time(time.ToDateTimeOffset());

    public static string Time(DateTimeOffset time) =>
        $"<time datetime=\"{time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)}\">{time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC</time>";

    public static string Scopes(IEnumerable<string> scopes)
    {
        var list = scopes.ToList();
        return list.Count == 0 ? "—" : string.Join(" ", list.Select(s => $"<code>{E(s)}</code>"));
    }

    /// <summary>The hidden anti-forgery field every form carries.</summary>
    public static string Antiforgery(HttpContext http)
    {
        var tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
        return $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";
    }

    public static string Alert(string message) => $"<div class=\"alert error\" role=\"alert\">{E(message)}</div>";

    public static string Notice(string message) => $"<div class=\"alert ok\" role=\"status\">{E(message)}</div>";

    /// <summary>
    /// The banner of a list answered with partial results (ListLeases / ListApprovals <c>unreachable_shards</c>):
    /// empty when the list is complete.
    /// </summary>
    public static string Incomplete(IReadOnlyCollection<int> unreachableShards, string what) => unreachableShards.Count == 0 ? string.Empty
        : $"<div class=\"alert warning incomplete\" role=\"alert\"><strong>Some shards could not be read; the list is incomplete.</strong> "
          + $"Lease shards {E(string.Join(", ", unreachableShards))} are unreachable (a Redis master is down): the {E(what)} of the agents on them are missing. "
          + "They reappear once Redis is back.</div>";

    public static string Dl(params (string Term, string Html)[] rows) =>
        "<dl class=\"facts\">" + string.Concat(rows.Select(r => $"<dt>{E(r.Term)}</dt><dd>{r.Html}</dd>")) + "</dl>";

    /// <summary>
    /// Post/Redirect/Get: a state change that succeeded answers 303 to the page that shows its result, with the
    /// message in a short-lived, encrypted, HttpOnly cookie shown once by that page; a refresh then reloads the
    /// page instead of sending the action again. (Refusals render directly: they changed nothing.)
    /// </summary>
    public static IResult Done(HttpContext http, string location, string message)
    {
        http.Response.Cookies.Append(FlashCookie(http), Flash(http).Protect(message), new CookieOptions
        {
            HttpOnly = true,
            Secure = http.Request.IsHttps,
            SameSite = SameSiteMode.Lax,
            Path = "/",
            MaxAge = TimeSpan.FromMinutes(1),
        });
        http.Response.Headers.Location = location;
        return Results.StatusCode(StatusCodes.Status303SeeOther);
    }

    /// <summary>The message a <see cref="Done"/> left for this page, once (removed as it is read); null when none or tampered with.</summary>
    private static string? TakeFlash(HttpContext http)
    {
        var name = FlashCookie(http);
        if (!http.Request.Cookies.TryGetValue(name, out var value) || string.IsNullOrEmpty(value))
        {
            return null;
        }

        http.Response.Cookies.Delete(name, new CookieOptions { Path = "/", Secure = http.Request.IsHttps });
        try
        {
            return Flash(http).Unprotect(value);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }

    // __Host- cookies must be Secure, path /, no domain: only over TLS (as the session and anti-forgery cookies).
    private static string FlashCookie(HttpContext http) => http.Request.IsHttps ? "__Host-credbroker-flash" : "credbroker-flash";

    private static IDataProtector Flash(HttpContext http) =>
        http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector("CredBroker.Console.Flash");

    public static IResult Page(HttpContext http, string title, string body, string? message = null, bool error = false, int status = StatusCodes.Status200OK)
    {
        if (message is null && http.Request.Method == HttpMethods.Get)
        {
            message = TakeFlash(http);
        }

        var user = ConsoleUser.From(http.User);
        var path = http.Request.Path.Value ?? "/";
        var page = new StringBuilder();
        page.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append($"<title>{E(title)} · CredBroker console</title>")
            .Append("<link rel=\"stylesheet\" href=\"/assets/console.css\"><script src=\"/assets/console.js\" defer></script></head><body>")
            .Append("<a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\"><span class=\"brand\">CredBroker console</span>");
        if (user is not null)
        {
            page.Append("<nav aria-label=\"Main\"><ul>");
            foreach (var (href, label) in Navigation)
            {
                var current = path.StartsWith(href, StringComparison.Ordinal) ? " aria-current=\"page\"" : string.Empty;
                page.Append($"<li><a href=\"{href}\"{current}>{label}</a></li>");
            }

            page.Append("</ul></nav>")
                .Append($"<div class=\"who\"><span>Signed in as <strong>{E(user.Subject)}</strong> ({E(user.RoleList)})</span>")
                .Append($"<form method=\"post\" action=\"/signout\">{Antiforgery(http)}<button type=\"submit\" class=\"link\">Sign out</button></form></div>");
        }

        page.Append($"</header><main id=\"main\" tabindex=\"-1\"><h1>{E(title)}</h1>");
        if (message is not null)
        {
            page.Append(error ? Alert(message) : Notice(message));
        }

        page.Append(body).Append("</main></body></html>");
        return Results.Content(page.ToString(), "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    public static IResult Fragment(string html) => Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8);
}
