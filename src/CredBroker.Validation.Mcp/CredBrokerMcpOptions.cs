using CredBroker.Validation.AspNetCore;

namespace CredBroker.Validation.Mcp;

/// <summary>
/// How an MCP server guards its tools with CredBroker tokens: the resource it is (RFC 9728 metadata), the
/// authentication scheme that validates the tokens, and the fail-closed switches.
/// </summary>
public sealed class CredBrokerMcpOptions
{
    /// <summary>The MCP endpoint's canonical URL (e.g. <c>https://tools.example/mcp</c>): the metadata's <c>resource</c>. Required.</summary>
    public Uri? Resource { get; set; }

    /// <summary>The authorization servers clients get tokens from: the broker's issuer URL(s). Required, at least one.</summary>
    public IList<Uri> AuthorizationServers { get; } = [];

    /// <summary>The scopes the metadata advertises (<c>scopes_supported</c>); default: every scope a tool's <see cref="RequireScopeAttribute"/> names.</summary>
    public IList<string> ScopesSupported { get; } = [];

    /// <summary>A human-readable name for the metadata's <c>resource_name</c>.</summary>
    public string? ResourceName { get; set; }

    /// <summary>Where the metadata is served; default <c>/.well-known/oauth-protected-resource</c>.</summary>
    public string MetadataPath { get; set; } = "/.well-known/oauth-protected-resource";

    /// <summary>The CredBroker scheme that validates tokens (default <see cref="CredBrokerDefaults.AuthenticationScheme"/>).</summary>
    public string TokenScheme { get; set; } = CredBrokerDefaults.AuthenticationScheme;

    /// <summary>Tools without a <see cref="RequireScopeAttribute"/> are listed and callable by any valid token; default false (hidden and refused).</summary>
    public bool AllowToolsWithoutScope { get; set; }

    /// <summary>
    /// On streamable HTTP, refuse a <c>tools/call</c> outside the token's scopes before the MCP server sees it,
    /// with HTTP 403 and <c>WWW-Authenticate: Bearer error="insufficient_scope", scope="..."</c> (the MCP
    /// authorization spec's step-up signal) and a JSON-RPC error body naming the scope; default true. When
    /// false (or on other transports) the MCP filter refuses the call with a JSON-RPC error instead.
    /// </summary>
    public bool HttpInsufficientScope { get; set; } = true;

    /// <summary>The largest request body the HTTP pre-check reads (bytes); larger bodies are left to the MCP filter. Default 1 MiB.</summary>
    public long MaxInspectedBody { get; set; } = 1024 * 1024;

    /// <summary>The metadata URL for <paramref name="resource"/>: its origin plus <see cref="MetadataPath"/>.</summary>
    public Uri MetadataUri(Uri resource) => new(new Uri(resource.GetLeftPart(UriPartial.Authority)), MetadataPath);
}
