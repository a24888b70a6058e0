using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CredBroker.Validation.AspNetCore;

/// <summary>Names used by the CredBroker authentication scheme.</summary>
public static class CredBrokerDefaults
{
    /// <summary>The scheme name <see cref="CredBrokerAuthenticationExtensions.AddCredBroker"/> registers.</summary>
    public const string AuthenticationScheme = "CredBroker";

    /// <summary>One claim per granted scope.</summary>
    public const string ScopeClaim = "scope";
}

/// <summary>
/// Registration: <c>services.AddAuthentication().AddCredBroker()</c> after registering an
/// <see cref="AccessTokenValidator"/> (and, for revocations, a running <see cref="RevocationSync"/>
/// passed to it) in DI; endpoints then use <c>RequireAuthorization(p =&gt; p.RequireScope("tickets:read"))</c>.
/// </summary>
public static class CredBrokerAuthenticationExtensions
{
    /// <summary>Adds the CredBroker bearer scheme; an <see cref="AccessTokenValidator"/> must be registered in DI.</summary>
    public static AuthenticationBuilder AddCredBroker(this AuthenticationBuilder builder, string scheme = CredBrokerDefaults.AuthenticationScheme)
    {
        builder.Services.TryAddSingleton(TimeProvider.System);
        return builder.AddScheme<AuthenticationSchemeOptions, CredBrokerAuthenticationHandler>(scheme, null);
    }

    /// <summary>The token must carry <paramref name="scope"/> (exact match; tokens never carry patterns).</summary>
    public static AuthorizationPolicyBuilder RequireScope(this AuthorizationPolicyBuilder policy, string scope) =>
        policy.AddAuthenticationSchemes(CredBrokerDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireClaim(CredBrokerDefaults.ScopeClaim, scope);
}

/// <summary>
/// Validates <c>Authorization: Bearer</c> CredBroker tokens offline with the registered
/// <see cref="AccessTokenValidator"/> (certificate-bound tokens against the TLS client certificate)
/// and answers per RFC 6750: 401 with <c>error="invalid_token"</c>, 403 with <c>error="insufficient_scope"</c>.
/// The reason code is logged, never the token.
/// </summary>
public sealed partial class CredBrokerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AccessTokenValidator validator, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
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
