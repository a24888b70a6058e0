using CredBroker.Core.Tokens;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CredBroker.Server.Http;

/// <summary>The plain HTTP listener: JWKS, OpenID discovery, liveness and readiness (/metrics: <see cref="Hosting.Telemetry"/>).</summary>
public static class WellKnownEndpoints
{
    /// <param name="startupGrace">/healthz fails once the broker has run this long without ever being ready (zero: never).</param>
    public static void Map(IEndpointRouteBuilder routes, ISigningKeys keys, string issuer, CachedReadiness readiness, TimeSpan publishLead, TimeSpan startupGrace = default)
    {
        var endpoints = routes.MapGroup(string.Empty).WithMetadata(Rpc.PlainHttpEndpoint.Instance);
        var discovery = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["jwks_uri"] = issuer.TrimEnd('/') + "/.well-known/jwks.json",
            ["id_token_signing_alg_values_supported"] = new[] { "ES256" },
            ["token_endpoint_auth_signing_alg_values_supported"] = new[] { "ES256" },
            ["response_types_supported"] = new[] { "token" },
            ["subject_types_supported"] = new[] { "public" },
        });

        // Validators must not cache the JWKS past the lead with which a new key is published before it signs.
        var jwksMaxAge = (int)Math.Clamp(publishLead.TotalSeconds / 2, 0, 300);
        endpoints.MapGet("/.well-known/jwks.json", (HttpContext http) => keys.JwksJson is { } jwks
            ? Json(http, jwks, $"public, max-age={jwksMaxAge}")
            : Results.Text("signing keys not loaded yet", statusCode: StatusCodes.Status503ServiceUnavailable));
        endpoints.MapGet("/.well-known/openid-configuration", (HttpContext http) => Json(http, discovery, "public, max-age=3600"));
        // Liveness: the process serves HTTP. Never depends on Redis, so an outage does not get replicas restarted; only a
        // start that never became ready within the grace fails it (then a restart is the remedy).
        endpoints.MapGet("/healthz", () => readiness.StartupOverdue(startupGrace) is { } stuck
            ? Results.Text(stuck, statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok"));
        // Readiness: the state the background refresh keeps (no Redis round trip per probe).
        endpoints.MapGet("/readyz", (HttpContext http) =>
        {
            var (ready, checks) = readiness.Current();
            http.Response.Headers.CacheControl = "no-store";
            var body = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object> { ["ready"] = ready, ["checks"] = checks });
            return Results.Text(body, "application/json", statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
    }

    private static IResult Json(HttpContext http, string body, string cacheControl)
    {
        http.Response.Headers.CacheControl = cacheControl;
        return Results.Text(body, "application/json");
    }
}
