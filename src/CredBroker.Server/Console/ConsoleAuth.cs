using CredBroker.Server.Auth;
using CredBroker.Server.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace CredBroker.Server.WebConsole;

/// <summary>
/// Console sign-in: a session cookie (HttpOnly, SameSite=Lax, Secure with TLS) issued after
/// OpenID Connect authorization code + PKCE against an operator issuer, with roles mapped by
/// <see cref="OperatorDirectory"/> exactly as for operator credentials; in dev mode after the
/// printed dev operator secret. Tokens from the provider are not kept (SaveTokens off), and none
/// ever appears in a URL (the code is exchanged server-side, bound to the PKCE verifier).
/// </summary>
internal static class ConsoleAuth
{
    public const string CookieScheme = "credbroker-console";
    public const string OidcScheme = "credbroker-oidc";

    public static void Add(IServiceCollection services, BrokerOptions options)
    {
        var tls = options.Listen.Tls is not null;
        var secure = tls ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
        var authentication = services.AddAuthentication(o =>
        {
            o.DefaultScheme = CookieScheme;
            o.DefaultChallengeScheme = options.Dev ? CookieScheme : OidcScheme;
        });
        authentication.AddCookie(CookieScheme, o =>
        {
            // __Host- cookies must be Secure, path /, no domain: only with TLS.
            o.Cookie.Name = tls ? "__Host-credbroker-console" : "credbroker-console";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = secure;
            o.Cookie.Path = "/";
            o.ExpireTimeSpan = options.Console.SessionLifetime;
            o.SlidingExpiration = true;
            o.LoginPath = "/signin";
            o.Events.OnRedirectToLogin = c => Redirect(c.Response, "/signin");
            o.Events.OnRedirectToAccessDenied = c => Redirect(c.Response, "/signin");
        });
        if (!options.Dev)
        {
            AddOpenIdConnect(authentication, options, secure);
        }

        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = tls ? "__Host-credbroker-csrf" : "credbroker-csrf";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = secure;
            o.FormFieldName = "__RequestVerificationToken";
            o.HeaderName = null;
            // The console sets X-Frame-Options: DENY and frame-ancestors 'none' itself.
            o.SuppressXFrameOptionsHeader = true;
        });
    }

    private static Task Redirect(HttpResponse response, string path)
    {
        response.Redirect(path);
        return Task.CompletedTask;
    }

    private static void AddOpenIdConnect(AuthenticationBuilder authentication, BrokerOptions options, CookieSecurePolicy secure)
    {
        var oidc = options.Console.Oidc;
        var authority = oidc.Authority!;
        // Roles are granted per operator issuer (the same string as in Operators:Issuers).
        var issuer = options.Operators.Issuers.Select(i => i.Issuer).First(i => string.Equals(i.TrimEnd('/'), authority.TrimEnd('/'), StringComparison.Ordinal));
        var directory = new OperatorDirectory(options.Operators);
        authentication.AddOpenIdConnect(OidcScheme, o =>
        {
            o.Authority = authority;
            o.RequireHttpsMetadata = authority.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
            o.ClientId = oidc.ClientId;
            if (oidc.ClientSecretFile is { Length: > 0 } secretFile)
            {
                o.ClientSecret = File.ReadAllText(secretFile).Trim();
            }

            o.ResponseType = OpenIdConnectResponseType.Code;
            o.UsePkce = true;
            // The code comes back in the query of a top-level GET (SameSite=Lax cookies are sent); it is not a token.
            o.ResponseMode = OpenIdConnectResponseMode.Query;
            o.Scope.Clear();
            o.Scope.Add("openid");
            foreach (var scope in oidc.Scopes.Where(s => s != "openid"))
            {
                o.Scope.Add(scope);
            }

            o.CallbackPath = "/signin-oidc";
            o.SaveTokens = false;
            o.MapInboundClaims = false;
            o.GetClaimsFromUserInfoEndpoint = true;
            o.ClaimActions.MapJsonKey(directory.GroupClaim, directory.GroupClaim);
            o.TokenValidationParameters.NameClaimType = "sub";
            o.NonceCookie.SameSite = SameSiteMode.Lax;
            o.NonceCookie.SecurePolicy = secure;
            o.CorrelationCookie.SameSite = SameSiteMode.Lax;
            o.CorrelationCookie.SecurePolicy = secure;
            o.Events.OnTicketReceived = context =>
            {
                var principal = context.Principal!;
                var subject = principal.FindFirst("sub")?.Value;
                var groups = principal.FindAll(directory.GroupClaim).Select(c => c.Value).ToList();
                var roles = subject is null ? new HashSet<OperatorRole>() : directory.RolesFor(issuer, subject, groups, null);
                if (roles.Count == 0)
                {
                    context.Response.Redirect("/signin?refused=1");
                    context.HandleResponse();
                    return Task.CompletedTask;
                }

                context.Principal = new ConsoleUser(subject!, roles, "oidc").ToPrincipal(CookieScheme);
                return Task.CompletedTask;
            };
            o.Events.OnRemoteFailure = context =>
            {
                context.Response.Redirect("/signin?failed=1");
                context.HandleResponse();
                return Task.CompletedTask;
            };
        });
    }

    /// <summary>Signs the dev operator in (dev mode only).</summary>
    public static Task SignInDevAsync(HttpContext http) =>
        http.SignInAsync(CookieScheme, new ConsoleUser(DevMode.OperatorId, new HashSet<OperatorRole> { OperatorRole.Admin }, "dev-secret").ToPrincipal(CookieScheme));

}
