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
/// Validates CredBroker tokens offline with its scheme's <see cref="AccessTokenValidator"/>:
/// <c>Authorization: Bearer</c> (certificate-bound tokens against the TLS client certificate), and
/// <c>Authorization: DPoP</c> with exactly one <c>DPoP</c> proof header (RFC 9449: <c>htm</c> and
/// <c>htu</c> from the request, <c>ath</c>, the <c>iat</c> window, <c>jti</c> replay, and the token's
/// <c>cnf.jkt</c> equal to the proof's key). A DPoP-bound token presented as Bearer is refused.
/// Answers per RFC 6750 / RFC 9449 §7.1: 401 with <c>error="invalid_token"</c> or
/// <c>error="invalid_dpop_proof"</c>, 403 with <c>error="insufficient_scope"</c>.
/// The reason code is logged, never the token or the proof.
/// </summary>
public sealed partial class CredBrokerAuthenticationHandler(
    IOptionsMonitor<CredBrokerOptions> options, ILoggerFactory logger, UrlEncoder encoder, CredBrokerSchemes schemes, TimeProvider time)
    : AuthenticationHandler<CredBrokerOptions>(options, logger, encoder)
{
    private string? _error;
    private bool _dpop;

    /// <inheritdoc />
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        string token;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = header["Bearer ".Length..].Trim();
        }
        else if (header.StartsWith("DPoP ", StringComparison.OrdinalIgnoreCase))
        {
            _dpop = true;
            token = header["DPoP ".Length..].Trim();
        }
        else
        {
            return AuthenticateResult.NoResult();
        }

        var scheme = schemes.Get(Scheme.Name);
        var now = time.GetUtcNow();
        string? keyThumbprint = null;
        if (_dpop)
        {
            var proofs = Request.Headers["DPoP"];
            var proof = proofs.Count == 1 ? proofs[0] : null;
            // Repeated headers may arrive joined with commas, which no compact JWS contains.
            var checkedProof = proofs.Count > 1 || proof?.Contains(',', StringComparison.Ordinal) == true
                ? DpopProofResult.Fail(DpopErrors.Multiple, "more than one DPoP header.")
                : DpopProofValidator.Validate(proof, Request.Method, RequestUri(scheme.Options), now, scheme.Options.Dpop, token);
            if (checkedProof.Proof is { } p)
            {
                var replay = scheme.DpopReplay.TryAdd(p.ReplayKey, p.AcceptableUntil(scheme.Options.Dpop), now);
                checkedProof = replay switch
                {
                    ReplayOutcome.First => checkedProof,
                    ReplayOutcome.Replayed => DpopProofResult.Fail(DpopErrors.Replay, "the proof's jti was used already."),
                    _ => DpopProofResult.Fail(DpopErrors.ReplayCacheFull, "the replay cache is full."),
                };
            }

            if (checkedProof.Proof is not { } accepted)
            {
                _error = checkedProof.Error;
                LogRejected(Logger, checkedProof.Error ?? "invalid");
                return AuthenticateResult.Fail("invalid_dpop_proof: " + checkedProof.Error);
            }

            keyThumbprint = accepted.KeyThumbprint;
        }

        var certificate = Context.Connection.ClientCertificate;
        var thumbprint = certificate is null ? null : Base64Url(SHA256.HashData(certificate.RawData));
        var result = await scheme.Validator.ValidateAsync(token, now, thumbprint, keyThumbprint, Context.RequestAborted);
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
        if (t.KeyThumbprint is { } jkt)
        {
            claims.Add(new Claim("cnf_jkt", jkt));
        }

        claims.AddRange(t.Scopes.Select(s => new Claim(CredBrokerDefaults.ScopeClaim, s)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme.Name, "sub", null));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, Scheme.Name));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        var algs = string.Join(' ', OptionsMonitor.Get(Scheme.Name).Dpop.Algorithms);
        var proofError = _error is not null && _error.StartsWith("dpop_", StringComparison.Ordinal) && _error != DpopErrors.Binding;
        Response.Headers.WWWAuthenticate = _error is null
            ? new Microsoft.Extensions.Primitives.StringValues(["Bearer", $"DPoP algs=\"{algs}\""])
            : _dpop || _error == DpopErrors.Binding
                ? $"DPoP error=\"{(proofError ? "invalid_dpop_proof" : "invalid_token")}\", error_description=\"{_error}\", algs=\"{algs}\""
                : $"Bearer error=\"invalid_token\", error_description=\"{_error}\"";
        return Task.CompletedTask;
    }

    /// <summary>The <c>htu</c> a proof must carry: the public origin (or the request's scheme and host), PathBase and Path; no query.</summary>
    private Uri RequestUri(CredBrokerOptions options)
    {
        var origin = options.DpopPublicOrigin?.GetLeftPart(UriPartial.Authority) ?? Request.Scheme + "://" + Request.Host.ToUriComponent();
        return new Uri(origin + Request.PathBase.ToUriComponent() + Request.Path.ToUriComponent());
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        Response.Headers.WWWAuthenticate = (_dpop ? "DPoP" : "Bearer") + " error=\"insufficient_scope\"";
        return Task.CompletedTask;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "CredBroker token rejected: {Reason}")]
    private static partial void LogRejected(ILogger logger, string reason);
}
