using CredBroker.Server.Hosting;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using static CredBroker.Server.WebConsole.Html;
using KestrelListenOptions = Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions;

namespace CredBroker.Server.WebConsole;

/// <summary>The console listener's port; console endpoints match only there, and nothing else does (<see cref="Rpc.ListenerEndpointPolicy"/>).</summary>
public sealed record ConsoleListener(int Port);

/// <summary>Marks the console's endpoints: served only on the console listener.</summary>
public sealed class ConsoleEndpoint
{
    public static readonly ConsoleEndpoint Instance = new();

    private ConsoleEndpoint()
    {
    }
}

/// <summary>
/// The web console for operators and approvers on its own listener: server-rendered pages, assets
/// served by the broker, sign-in (<see cref="ConsoleAuth"/>), security headers, anti-forgery on
/// every POST, and the approval webhooks.
/// </summary>
public static class ConsoleHost
{
    private const string Csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    public static void AddConsole(IServiceCollection services, BrokerOptions options)
    {
        Webhooks.ApprovalWebhooks.Add(services, options);
        if (!options.ConsoleEnabled)
        {
            return;
        }

        services.AddSingleton(new ConsoleListener(options.Listen.ConsolePort));
        services.AddSingleton<ConsoleOperations>();
        ConsoleAuth.Add(services, options);
    }

    /// <summary>HTTP/1.1 (and HTTP/2 over TLS) with the listeners' certificate; browsers present no client certificate.</summary>
    public static void Listen(KestrelServerOptions kestrel, BrokerOptions options)
    {
        if (!options.ConsoleEnabled)
        {
            return;
        }

        kestrel.Listen(options.Listen.ParsedAddress, options.Listen.ConsolePort, l =>
        {
            l.Protocols = HttpProtocols.Http1;
            if (options.Listen.Tls is { } tls)
            {
                l.UseListenerTls(new ListenerTlsOptions { CertificateFile = tls.CertificateFile, KeyFile = tls.KeyFile, ClientCaFile = null, RequireClientCertificate = false });
                l.Protocols = HttpProtocols.Http1AndHttp2;
            }
        });
    }

    /// <summary>The console's middleware (on its port only) and endpoints; call after UseRouting.</summary>
    public static void Map(WebApplication app, BrokerOptions options)
    {
        if (!options.ConsoleEnabled)
        {
            return;
        }

        var port = options.Listen.ConsolePort;
        app.UseWhen(c => c.Connection.LocalPort == port, console =>
        {
            console.Use(SecurityHeaders);
            console.UseAuthentication();
            console.Use(RequireAntiforgery);
        });

        var open = app.MapGroup(string.Empty).WithMetadata(ConsoleEndpoint.Instance);
        open.MapGet("/assets/{name}", Asset);
        MapSignIn(open, options);
        var console = open.MapGroup(string.Empty).AddEndpointFilter(async (context, next) =>
            ConsoleUser.From(context.HttpContext.User) is null
                ? (HttpMethods.IsGet(context.HttpContext.Request.Method) ? Results.Redirect("/signin") : Results.Unauthorized())
                : await next(context));
        console.MapGet("/", () => Results.Redirect("/approvals"));
        ApprovalsPage.Map(console);
        LeasesPage.Map(console);
        AgentsPage.Map(console);
        AuditPage.Map(console);
        PolicyPage.Map(console);
    }

    private static void MapSignIn(RouteGroupBuilder open, BrokerOptions options)
    {
        open.MapGet("/signin", (HttpContext http, string? refused, string? failed) =>
        {
            var message = refused is not null ? "Your account is not granted an operator role on this broker (viewer, revoker, approver or admin)."
                : failed is not null ? "Sign-in did not complete; try again." : null;
            var body = options.Dev
                ? $"<form method=\"post\" action=\"/signin\" class=\"card signin\">{Antiforgery(http)}<p>Dev mode: sign in with the dev operator secret the broker printed at start (or <code>CREDBROKER_DEV_OPERATOR_SECRET</code>).</p>"
                  + "<label for=\"secret\">Dev operator secret</label><input type=\"password\" id=\"secret\" name=\"secret\" required autocomplete=\"current-password\" autofocus>"
                  + "<button type=\"submit\" class=\"primary\">Sign in</button></form>"
                : "<p class=\"card signin\">Operators and approvers sign in with the organisation's identity provider.<br><a class=\"button primary\" href=\"/signin/oidc\">Sign in with your organisation</a></p>";
            return Page(http, "Sign in", body, message, error: message is not null, status: message is null ? 200 : 401);
        });
        if (options.Dev)
        {
            open.MapPost("/signin", async (HttpContext http, ConsoleDevSignIn dev) =>
            {
                var form = await http.Request.ReadFormAsync(http.RequestAborted);
                if (!dev.Matches(form["secret"].ToString()))
                {
                    return Page(http, "Sign in", "<p><a href=\"/signin\">Try again</a></p>", "That is not the dev operator secret.", error: true, status: StatusCodes.Status401Unauthorized);
                }

                await ConsoleAuth.SignInDevAsync(http);
                return Results.Redirect("/approvals");
            });
        }
        else
        {
            open.MapGet("/signin/oidc", () => Results.Challenge(new AuthenticationProperties { RedirectUri = "/approvals" }, [ConsoleAuth.OidcScheme]));
        }

        open.MapPost("/signout", async (HttpContext http) =>
        {
            await http.SignOutAsync(ConsoleAuth.CookieScheme);
            return Results.Redirect("/signin");
        });
    }

    private static Task SecurityHeaders(HttpContext http, Func<Task> next)
    {
        http.Response.OnStarting(() =>
        {
            var headers = http.Response.Headers;
            headers.ContentSecurityPolicy = Csp;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers["Cross-Origin-Opener-Policy"] = "same-origin";
            headers["Cross-Origin-Resource-Policy"] = "same-origin";
            headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
            if (http.Request.IsHttps)
            {
                headers.StrictTransportSecurity = "max-age=31536000";
            }

            if (!http.Request.Path.StartsWithSegments("/assets", StringComparison.Ordinal))
            {
                headers.CacheControl = "no-store";
            }

            return Task.CompletedTask;
        });
        return next();
    }

    /// <summary>Every state change on the console carries the anti-forgery token; without it the request is refused before any handler runs.</summary>
    private static async Task RequireAntiforgery(HttpContext http, Func<Task> next)
    {
        if (!HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method) && !HttpMethods.IsOptions(http.Request.Method))
        {
            try
            {
                await http.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(http);
            }
            catch (AntiforgeryValidationException)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                http.Response.ContentType = "text/html; charset=utf-8";
                await http.Response.WriteAsync(
                    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused · CredBroker console</title><link rel=\"stylesheet\" href=\"/assets/console.css\"></head><body><main id=\"main\">"
                    + "<h1>Request refused</h1><div class=\"alert error\" role=\"alert\">The form could not be verified (its anti-forgery token is missing or invalid), so nothing was changed. Reload the page and try again.</div>"
                    + "<p><a href=\"/approvals\">Back to the console</a></p></main></body></html>");
                return;
            }
        }

        await next();
    }

    private static IResult Asset(string name)
    {
        var type = Path.GetExtension(name) switch
        {
            ".css" => "text/css; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => null,
        };
        var stream = type is null ? null : typeof(ConsoleHost).Assembly.GetManifestResourceStream("CredBroker.Console." + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, type);
    }
}
