using System.Security.Claims;
using CredBroker.Validation.AspNetCore;
using ModelContextProtocol.Server;

namespace CredBroker.Validation.Mcp;

/// <summary>What a caller may do with one tool: allowed, or refused with the scopes it lacks.</summary>
/// <param name="Allowed">Whether the caller may see and call the tool.</param>
/// <param name="Required">Every scope the tool requires (empty when it declares none).</param>
/// <param name="Missing">The required scopes the caller's token does not carry.</param>
/// <param name="Reason">Why a call is refused (names the tool and the missing scopes); null when allowed.</param>
public sealed record ToolDecision(bool Allowed, IReadOnlyList<string> Required, IReadOnlyList<string> Missing, string? Reason);

/// <summary>The scope-per-tool rule, one place for the MCP filters and the HTTP pre-check.</summary>
public static class ToolScopes
{
    /// <summary>The scopes <paramref name="tool"/> requires: every <see cref="RequireScopeAttribute"/> on its method and class.</summary>
    public static IReadOnlyList<string> Required(McpServerTool tool)
    {
        ArgumentNullException.ThrowIfNull(tool);
        return tool.Metadata.OfType<RequireScopeAttribute>().Select(a => a.Scope).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The scopes the authenticated <paramref name="user"/>'s token carries (one <c>scope</c> claim each).</summary>
    public static IReadOnlySet<string> Granted(ClaimsPrincipal? user) =>
        user?.Identity?.IsAuthenticated == true
            ? user.FindAll(CredBrokerDefaults.ScopeClaim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string>(StringComparer.Ordinal);

    /// <summary>
    /// Decides whether <paramref name="user"/> may use the tool <paramref name="name"/> (<paramref name="tool"/>, null
    /// when the server has no such tool in its collection). Fails closed: no token, or a tool that declares
    /// no scope (unless <see cref="CredBrokerMcpOptions.AllowToolsWithoutScope"/>), is refused.
    /// </summary>
    public static ToolDecision Decide(string name, McpServerTool? tool, ClaimsPrincipal? user, CredBrokerMcpOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var required = tool is null ? [] : Required(tool);
        if (user?.Identity?.IsAuthenticated != true)
        {
            return new ToolDecision(false, required, required, $"tool '{name}' needs a CredBroker token; the request carries none");
        }

        if (required.Count == 0)
        {
            return options.AllowToolsWithoutScope
                ? new ToolDecision(true, required, [], null)
                : new ToolDecision(false, required, [], tool is null
                    ? $"tool '{name}' is not one of this server's tools"
                    : $"tool '{name}' declares no [RequireScope] and is refused (CredBrokerMcpOptions.AllowToolsWithoutScope is off)");
        }

        var granted = Granted(user);
        var missing = required.Where(s => !granted.Contains(s)).ToList();
        return missing.Count == 0
            ? new ToolDecision(true, required, [], null)
            : new ToolDecision(false, required, missing,
                $"insufficient_scope: tool '{name}' requires scope {string.Join(" ", missing.Select(s => $"'{s}'"))}, which this token does not carry");
    }
}
