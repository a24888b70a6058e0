using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CredBroker.Validation.Mcp;

/// <summary>
/// The <see cref="CredBrokerMcpDefaults.AuthenticationScheme"/> scheme: authentication is the CredBroker scheme's
/// (<see cref="CredBrokerMcpOptions.TokenScheme"/>: JWKS, revocation feed, certificate binding); challenges follow the
/// MCP authorization spec: 401 with <c>WWW-Authenticate: Bearer resource_metadata="..."</c>, and
/// <c>error="invalid_token"</c> with the reason when a token was rejected; 403 with <c>error="insufficient_scope"</c>.
/// </summary>
public sealed class CredBrokerMcpChallengeHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IOptions<CredBrokerMcpOptions> mcp)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private const string InvalidTokenPrefix = "invalid_token: ";

    /// <inheritdoc />
    protected override Task<AuthenticateResult> HandleAuthenticateAsync() => Context.AuthenticateAsync(mcp.Value.TokenScheme);

    /// <inheritdoc />
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await Context.AuthenticateAsync(mcp.Value.TokenScheme);
        var header = $"Bearer resource_metadata=\"{MetadataUri()}\"";
        if (result.Failure is { } failure)
        {
            var reason = failure.Message.StartsWith(InvalidTokenPrefix, StringComparison.Ordinal) ? failure.Message[InvalidTokenPrefix.Length..] : "invalid";
            header += $", error=\"invalid_token\", error_description=\"{reason.Replace('"', '\'')}\"";
        }

        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = header;
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        Response.Headers.WWWAuthenticate = $"Bearer error=\"insufficient_scope\", resource_metadata=\"{MetadataUri()}\"";
        return Task.CompletedTask;
    }

    private Uri MetadataUri() => mcp.Value.MetadataUri(mcp.Value.Resource!);
}
