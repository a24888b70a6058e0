using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Authentication;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace CredBroker.Validation.Mcp;

/// <summary>Names used by the CredBroker MCP guard.</summary>
public static class CredBrokerMcpDefaults
{
    /// <summary>The scheme <c>AddCredBrokerMcp</c> registers: it authenticates with the CredBroker scheme and answers challenges per the MCP authorization spec.</summary>
    public const string AuthenticationScheme = "CredBroker.Mcp";

    /// <summary>The JSON-RPC error code of a refusal for a missing scope (an implementation-defined server error).</summary>
    public const int InsufficientScopeError = -32003;
}

/// <summary>
/// Guarding an ASP.NET Core MCP server (ModelContextProtocol.AspNetCore) with CredBroker tokens, in a few lines:
/// <code>
/// builder.Services.AddAuthentication(CredBrokerMcpDefaults.AuthenticationScheme)
///     .AddCredBroker(o =&gt; { o.Issuer = broker; o.Audience = "demo-api"; o.RevocationFeed = feed; })
///     .AddCredBrokerMcp(o =&gt; { o.Resource = new Uri("https://tools.example/mcp"); o.AuthorizationServers.Add(new Uri(broker)); });
/// builder.Services.AddAuthorization();
/// builder.Services.AddMcpServer().WithHttpTransport().WithTools&lt;TicketTools&gt;().AddCredBrokerScopes();
/// ...
/// app.MapCredBrokerProtectedResourceMetadata();
/// app.MapMcp("/mcp").RequireCredBrokerToken();
/// </code>
/// Tools carry <see cref="RequireScopeAttribute"/>; <c>tools/list</c> shows a caller only the tools its token's
/// scopes allow, and <c>tools/call</c> of any other tool is refused naming the missing scope.
/// </summary>
public static class CredBrokerMcpExtensions
{
    /// <summary>
    /// Adds the <see cref="CredBrokerMcpDefaults.AuthenticationScheme"/> scheme: tokens are validated by the CredBroker
    /// scheme (<see cref="CredBrokerMcpOptions.TokenScheme"/>); a request without a valid token gets 401 with
    /// <c>WWW-Authenticate: Bearer resource_metadata="..."</c> (plus <c>error="invalid_token"</c> and the reason when a
    /// token was sent), as the MCP authorization spec asks. Also registers <see cref="CredBrokerMcpOptions"/>.
    /// </summary>
    public static AuthenticationBuilder AddCredBrokerMcp(this AuthenticationBuilder builder, Action<CredBrokerMcpOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<CredBrokerMcpOptions>().Configure(configure).Validate(
            o => o.Resource is { IsAbsoluteUri: true } && o.AuthorizationServers.Count > 0 && o.MetadataPath.StartsWith('/'),
            "CredBrokerMcpOptions: Resource (the MCP endpoint's absolute URL) and at least one AuthorizationServers entry (the broker's issuer) are required, and MetadataPath must start with '/'.")
            .ValidateOnStart();
        return builder.AddScheme<AuthenticationSchemeOptions, CredBrokerMcpChallengeHandler>(CredBrokerMcpDefaults.AuthenticationScheme, null);
    }

    /// <summary>
    /// Enforces <see cref="RequireScopeAttribute"/> inside the MCP server, on any transport: <c>tools/list</c> is filtered
    /// to the tools the caller's scopes allow, and <c>tools/call</c> of another tool fails with an MCP error
    /// (<see cref="CredBrokerMcpDefaults.InsufficientScopeError"/>) naming the missing scope.
    /// </summary>
    public static IMcpServerBuilder AddCredBrokerScopes(this IMcpServerBuilder builder, Action<CredBrokerMcpOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<CredBrokerMcpOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        // Task-augmented calls: the alternate-result pipeline runs before a task record is created, so the check
        // there refuses the call before any task exists (the ordinary filter below would only run in the background).
        // (An evaluation API of the SDK, MCPEXP002; the ordinary filter below stays the guarantee.)
#pragma warning disable MCPEXP002
        builder.Services.Configure<McpServerOptions>(o => o.Filters.Request.CallToolWithAlternateFilters.Add((context, next, cancellationToken) =>
        {
            Check(context);
            return next(context, cancellationToken);
        }));
#pragma warning restore MCPEXP002
        return builder.WithRequestFilters(filters =>
        {
            filters.AddListToolsFilter(next => async (context, cancellationToken) =>
            {
                var result = await next(context, cancellationToken);
                var settings = Settings(context.Services);
                var tools = context.Server.ServerOptions.ToolCollection;
                result.Tools = result.Tools
                    .Where(t => ToolScopes.Decide(t.Name, Find(tools, t.Name), context.User, settings).Allowed)
                    .ToList();
                return result;
            });
            filters.AddCallToolFilter(next => async (context, cancellationToken) =>
            {
                Check(context);
                return await next(context, cancellationToken);
            });
        });

        static void Check(RequestContext<CallToolRequestParams> context)
        {
            var name = context.Params?.Name ?? string.Empty;
            var tool = context.MatchedPrimitive as McpServerTool ?? Find(context.Server.ServerOptions.ToolCollection, name);
            var decision = ToolScopes.Decide(name, tool, context.User, Settings(context.Services));
            if (!decision.Allowed)
            {
                throw new McpProtocolException(decision.Reason!, (McpErrorCode)CredBrokerMcpDefaults.InsufficientScopeError);
            }
        }
    }

    /// <summary>
    /// Serves the RFC 9728 Protected Resource Metadata at <see cref="CredBrokerMcpOptions.MetadataPath"/> (and at the
    /// path-suffixed form <c>/.well-known/oauth-protected-resource/mcp</c> that MCP clients try first), without
    /// authentication: <c>resource</c>, the broker as <c>authorization_servers</c>, <c>scopes_supported</c> (default:
    /// every scope the tools require) and <c>bearer_methods_supported: ["header"]</c>.
    /// </summary>
    public static IEndpointConventionBuilder MapCredBrokerProtectedResourceMetadata(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<CredBrokerMcpOptions>>().Value;
        var resource = options.Resource!;
        var group = endpoints.MapGroup(string.Empty);
        var suffix = resource.AbsolutePath.TrimEnd('/');
        IResult Serve(HttpContext context)
        {
            var tools = context.RequestServices.GetService<IOptions<McpServerOptions>>()?.Value.ToolCollection;
            var scopes = options.ScopesSupported.Count > 0
                ? options.ScopesSupported.ToList()
                : (tools ?? []).SelectMany(ToolScopes.Required).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var metadata = new ProtectedResourceMetadata
            {
                Resource = resource.ToString(),
                AuthorizationServers = options.AuthorizationServers.Select(s => s.ToString().TrimEnd('/')).ToList(),
                ScopesSupported = scopes,
                BearerMethodsSupported = ["header"],
                ResourceName = options.ResourceName,
            };
            context.Response.Headers.CacheControl = "public, max-age=300";
            return Results.Json(metadata, McpJsonUtilities.DefaultOptions);
        }

        group.MapGet(options.MetadataPath, Serve).AllowAnonymous();
        if (suffix.Length > 0)
        {
            group.MapGet(options.MetadataPath.TrimEnd('/') + suffix, Serve).AllowAnonymous();
        }

        return group;
    }

    /// <summary>
    /// Every request to these endpoints (e.g. <c>MapMcp("/mcp")</c>) needs a valid CredBroker token (401 with the
    /// resource metadata otherwise), and — unless <see cref="CredBrokerMcpOptions.HttpInsufficientScope"/> is off — a
    /// <c>tools/call</c> outside the token's scopes is refused with HTTP 403 <c>insufficient_scope</c> before the MCP
    /// server sees it.
    /// </summary>
    public static TBuilder RequireCredBrokerToken<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.RequireAuthorization(p => p.AddAuthenticationSchemes(CredBrokerMcpDefaults.AuthenticationScheme).RequireAuthenticatedUser());
        builder.Add(endpoint =>
        {
            if (endpoint.RequestDelegate is { } inner)
            {
                endpoint.RequestDelegate = context => HttpScopeCheck.InvokeAsync(context, inner);
            }
        });
        return builder;
    }

    internal static CredBrokerMcpOptions Settings(IServiceProvider? services) =>
        services?.GetService<IOptions<CredBrokerMcpOptions>>()?.Value ?? new CredBrokerMcpOptions();

    internal static McpServerTool? Find(McpServerPrimitiveCollection<McpServerTool>? tools, string name) =>
        tools is not null && tools.TryGetPrimitive(name, out var tool) ? tool : null;
}

/// <summary>The streamable-HTTP pre-check: a JSON-RPC <c>tools/call</c> (alone or in a batch) outside the token's scopes gets 403.</summary>
internal static class HttpScopeCheck
{
    // A JSON body (never HTML): quotes in the message stay readable.
    private static readonly JsonSerializerOptions ReadableJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task InvokeAsync(HttpContext context, RequestDelegate inner)
    {
        var options = CredBrokerMcpExtensions.Settings(context.RequestServices);
        if (!options.HttpInsufficientScope || !HttpMethods.IsPost(context.Request.Method)
            || context.Request.ContentLength > options.MaxInspectedBody
            || context.RequestServices.GetService<IOptions<McpServerOptions>>()?.Value.ToolCollection is not { } tools)
        {
            await inner(context);
            return;
        }

        context.Request.EnableBuffering();
        var body = await ReadUpToAsync(context.Request.Body, options.MaxInspectedBody, context.RequestAborted);
        context.Request.Body.Position = 0;
        if (body is null)
        {
            await inner(context);
            return;
        }

        foreach (var (id, name) in ToolCalls(body))
        {
            var decision = ToolScopes.Decide(name, CredBrokerMcpExtensions.Find(tools, name), context.User, options);
            if (!decision.Allowed)
            {
                await RefuseAsync(context, id, decision, options);
                return;
            }
        }

        await inner(context);
    }

    private static async Task RefuseAsync(HttpContext context, JsonNode? id, ToolDecision decision, CredBrokerMcpOptions options)
    {
        var metadata = options.MetadataUri(options.Resource!);
        var scope = decision.Required.Count > 0 ? $", scope=\"{string.Join(' ', decision.Required)}\"" : string.Empty;
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.Headers.WWWAuthenticate =
            $"Bearer error=\"insufficient_scope\"{scope}, resource_metadata=\"{metadata}\", error_description=\"{decision.Reason!.Replace('"', '\'')}\"";
        var error = new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["id"] = id?.DeepClone(),
            ["error"] = new JsonObject
            {
                ["code"] = CredBrokerMcpDefaults.InsufficientScopeError,
                ["message"] = decision.Reason,
                ["data"] = new JsonObject { ["missing_scopes"] = new JsonArray(decision.Missing.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()) },
            },
        };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(error.ToJsonString(ReadableJson), context.RequestAborted);
    }

    /// <summary>The body, or null when it is longer than <paramref name="limit"/>.</summary>
    private static async Task<byte[]?> ReadUpToAsync(Stream body, long limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > limit)
            {
                return null;
            }
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// The id and tool name of every <c>tools/call</c> request in a JSON-RPC message or batch; nothing when the body
    /// is not JSON the pre-check can read (e.g. duplicate keys): the MCP server answers that, and the MCP filter
    /// (<c>AddCredBrokerScopes</c>) still decides every call it dispatches.
    /// </summary>
    private static List<(JsonNode? Id, string Name)> ToolCalls(byte[] body)
    {
        var calls = new List<(JsonNode?, string)>();
        try
        {
            var root = JsonNode.Parse(body);
            foreach (var message in root is JsonArray batch ? batch.ToList() : [root])
            {
                if (message is JsonObject m && m["method"] is JsonValue method && method.TryGetValue<string>(out var name) && name == RequestMethods.ToolsCall)
                {
                    var tool = m["params"] is JsonObject p && p["name"] is JsonValue n && n.TryGetValue<string>(out var s) ? s : string.Empty;
                    calls.Add((m["id"], tool));
                }
            }
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            return [];
        }

        return calls;
    }
}
