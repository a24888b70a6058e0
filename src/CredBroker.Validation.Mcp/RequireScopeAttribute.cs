namespace CredBroker.Validation.Mcp;

/// <summary>
/// The CredBroker scope a token must carry to see (<c>tools/list</c>) and call (<c>tools/call</c>) an MCP
/// tool. On a tool method, or on its class for every tool in it; several attributes mean all of them
/// are required. Scopes are compared exactly (tokens carry concrete scopes, never patterns).
/// <code>
/// [McpServerTool(Name = "close_ticket"), RequireScope("demo:write")]
/// public static string CloseTicket(string id) =&gt; ...;
/// </code>
/// Enforced by <c>AddCredBrokerScopes()</c> on the MCP server builder.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = true, Inherited = true)]
public sealed class RequireScopeAttribute : Attribute
{
    /// <summary>Requires <paramref name="scope"/>.</summary>
    public RequireScopeAttribute(string scope)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scope);
        if (scope.Any(char.IsWhiteSpace) || scope.Contains('*', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{scope}' is not one concrete scope (no spaces, no wildcards).", nameof(scope));
        }

        Scope = scope;
    }

    /// <summary>The required scope.</summary>
    public string Scope { get; }
}
