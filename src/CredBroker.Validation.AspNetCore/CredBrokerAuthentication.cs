using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CredBroker.Validation.AspNetCore;

/// <summary>Names used by the CredBroker authentication scheme.</summary>
public static class CredBrokerDefaults
{
    /// <summary>The scheme name <c>AddCredBroker</c> registers unless given another.</summary>
    public const string AuthenticationScheme = "CredBroker";

    /// <summary>One claim per granted scope.</summary>
    public const string ScopeClaim = "scope";

    /// <summary>The <see cref="IHttpClientFactory"/> client that fetches JWKS documents (<c>services.AddHttpClient(HttpClientName)</c> to configure it).</summary>
    public const string HttpClientName = "CredBroker.Jwks";
}

/// <summary>
/// Registration in one call per scheme:
/// <code>
/// services.AddAuthentication().AddCredBroker(o =&gt;
/// {
///     o.Issuer = "https://broker.example";
///     o.Audience = "tickets-api";
///     o.RevocationFeed = new BrokerRevocationFeed(client);
/// });
/// </code>
/// or <c>AddCredBroker(configuration.GetSection("CredBroker"))</c>. Each call adds an independent scheme
/// (its own keys, deny list, revocation feed, background service and health check
/// <c>credbroker-{scheme}</c>); its options are validated when the host starts. Endpoints then use
/// <c>RequireAuthorization(p =&gt; p.RequireScope("tickets:read"))</c>.
/// </summary>
public static class CredBrokerAuthenticationExtensions
{
    /// <summary>Adds the <see cref="CredBrokerDefaults.AuthenticationScheme"/> scheme, its options configured elsewhere (e.g. <c>services.Configure&lt;CredBrokerOptions&gt;("CredBroker", ...)</c>).</summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder) =>
        builder.AddCredBroker(CredBrokerDefaults.AuthenticationScheme, (Action<CredBrokerOptions>?)null);

    /// <summary>Adds the <see cref="CredBrokerDefaults.AuthenticationScheme"/> scheme configured by <paramref name="configure"/>.</summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder, Action<CredBrokerOptions> configure) =>
        builder.AddCredBroker(CredBrokerDefaults.AuthenticationScheme, configure);

    /// <summary>Adds the <see cref="CredBrokerDefaults.AuthenticationScheme"/> scheme bound to <paramref name="configuration"/> (e.g. the section <c>CredBroker</c>).</summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder, IConfiguration configuration) =>
        builder.AddCredBroker(CredBrokerDefaults.AuthenticationScheme, configuration);

    /// <summary>Adds the scheme <paramref name="scheme"/> bound to <paramref name="configuration"/>, then adjusted by <paramref name="configure"/> (e.g. to set the revocation feed).</summary>
    public static AuthenticationBuilder AddCredBroker(
        this AuthenticationBuilder builder, string scheme, IConfiguration configuration, Action<CredBrokerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddOptions<CredBrokerOptions>(scheme).Bind(configuration);
        return builder.AddCredBroker(scheme, configure);
    }

    /// <summary>Adds the scheme <paramref name="scheme"/>, its options configured elsewhere.</summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder, string scheme) =>
        builder.AddCredBroker(scheme, (Action<CredBrokerOptions>?)null);

    /// <summary>
    /// Adds the scheme <paramref name="scheme"/> configured by <paramref name="configure"/>: an independent
    /// second scheme for a second broker or audience. Validated at start; its background service
    /// (JWKS refresh, revocation feed) runs with the host; its health check is <c>credbroker-{scheme}</c>.
    /// </summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder, string scheme, Action<CredBrokerOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient(CredBrokerDefaults.HttpClientName);
        services.TryAddSingleton<CredBrokerSchemes>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CredBrokerOptions>, CredBrokerOptionsValidator>());
        services.AddOptions<CredBrokerOptions>(scheme).ValidateOnStart();

        // One background service and one health check per scheme. Added directly, not with
        // AddHostedService(factory), whose TryAddEnumerable would keep only the first scheme's service.
        services.AddSingleton<IHostedService>(sp => new CredBrokerBackgroundService(
            scheme, sp.GetRequiredService<CredBrokerSchemes>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<CredBrokerBackgroundService>>()));
        services.AddHealthChecks().Add(new HealthCheckRegistration(
            "credbroker-" + scheme,
            sp => new CredBrokerHealthCheck(sp.GetRequiredService<CredBrokerSchemes>(), scheme, sp.GetRequiredService<TimeProvider>()),
            failureStatus: null,
            tags: ["credbroker", "ready"]));

        return builder.AddScheme<CredBrokerOptions, CredBrokerAuthenticationHandler>(scheme, configure);
    }

    /// <summary>The token must carry <paramref name="scope"/> (exact match; tokens never carry patterns), authenticated by the default CredBroker scheme.</summary>
    public static AuthorizationPolicyBuilder RequireScope(this AuthorizationPolicyBuilder policy, string scope) =>
        policy.RequireScope(scope, CredBrokerDefaults.AuthenticationScheme);

    /// <summary>The token must carry <paramref name="scope"/>, authenticated by the CredBroker scheme <paramref name="scheme"/>.</summary>
    public static AuthorizationPolicyBuilder RequireScope(this AuthorizationPolicyBuilder policy, string scope, string scheme) =>
        policy.AddAuthenticationSchemes(scheme)
            .RequireAuthenticatedUser()
            .RequireClaim(CredBrokerDefaults.ScopeClaim, scope);
}

/// <summary>
/// Validates <c>Authorization: Bearer</c> CredBroker tokens offline with its scheme's
/// <see cref="AccessTokenValidator"/> (certificate-bound tokens against the TLS client certificate)
/// and answers per RFC 6750: 401 with <c>error="invalid_token"</c>, 403 with <c>error="insufficient_scope"</c>.
/// The reason code is logged, never the token.
/// </summary>
public sealed partial class CredBrokerAuthenticationHandler(
    IOptionsMonitor<CredBrokerOptions> options, ILoggerFactory logger, UrlEncoder encoder, CredBrokerSchemes schemes, TimeProvider time)
    : AuthenticationHandler<CredBrokerOptions>(options, logger, encoder)
{
    private string? _error;

    /// <inheritdoc />
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var token = header["Bearer ".Length..].Trim();
        var certificate = Context.Connection.ClientCertificate;
        var thumbprint = certificate is null ? null : Base64Url(SHA256.HashData(certificate.RawData));
        var validator = schemes.Get(Scheme.Name).Validator;
        var result = await validator.ValidateAsync(token, time.GetUtcNow(), thumbprint, Context.RequestAborted);
        if (result.Token is not { } t)
        {
            _error = result.Error;
            LogRejected(Logger, result.Error ?? "invalid");
            return AuthenticateResult.Fail("invalid_token: " + result.Error);
        }

        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, t.Subject), new("sub", t.Subject), new("client_id", t.ClientId),
            new("lease_id", t.LeaseId), new("jti", t.TokenId),
        };
        claims.AddRange(t.Scopes.Select(s => new Claim(CredBrokerDefaults.ScopeClaim, s)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme.Name, "sub", null));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, Scheme.Name));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = _error is null
            ? "Bearer"
            : $"Bearer error=\"invalid_token\", error_description=\"{_error}\"";
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        Response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_scope\"";
        return Task.CompletedTask;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "CredBroker token rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);
}
