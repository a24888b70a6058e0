using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CredBroker.Server.Signals;

/// <summary>
/// The SSF transmitter on the plain HTTP listener: <c>/.well-known/ssf-configuration</c> (open),
/// <c>/ssf/streams</c> (configuration: GET, POST, PATCH, PUT, DELETE), <c>/ssf/status</c> (GET, POST)
/// and <c>/ssf/poll/{stream_id}</c> (RFC 8936), each for authenticated receivers only.
/// </summary>
public static class SsfEndpoints
{
    public const int MaxBodyBytes = 256 * 1024;

    public static void Map(IEndpointRouteBuilder routes, SsfTransmitter transmitter, SsfReceivers receivers)
    {
        var endpoints = routes.MapGroup(string.Empty).WithMetadata(Rpc.PlainHttpEndpoint.Instance);
        endpoints.MapGet("/.well-known/ssf-configuration", (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "public, max-age=3600";
            return Results.Text(transmitter.Metadata().ToJsonString(), "application/json");
        });

        endpoints.MapGet("/ssf/streams", H(http => Handle(http, receivers, async receiver =>
        {
            var id = http.Request.Query["stream_id"].ToString();
            if (id.Length > 0)
            {
                return Json(200, transmitter.Describe(await transmitter.GetAsync(receiver, id, http.RequestAborted)));
            }

            var all = await transmitter.ListAsync(receiver, http.RequestAborted);
            return Json(200, new JsonArray([.. all.Select(s => (JsonNode)transmitter.Describe(s))]));
        })));
        endpoints.MapPost("/ssf/streams", H(http => Handle(http, receivers, async receiver =>
            Json(201, transmitter.Describe(await transmitter.CreateAsync(receiver, await BodyAsync(http), http.RequestAborted))))));
        endpoints.MapMethods("/ssf/streams", ["PATCH"], H(http => Handle(http, receivers, async receiver =>
            Json(200, transmitter.Describe(await transmitter.UpdateAsync(receiver, await BodyAsync(http), replace: false, http.RequestAborted))))));
        endpoints.MapPut("/ssf/streams", H(http => Handle(http, receivers, async receiver =>
            Json(200, transmitter.Describe(await transmitter.UpdateAsync(receiver, await BodyAsync(http), replace: true, http.RequestAborted))))));
        endpoints.MapDelete("/ssf/streams", H(http => Handle(http, receivers, async receiver =>
        {
            await transmitter.DeleteAsync(receiver, http.Request.Query["stream_id"].ToString(), http.RequestAborted);
            return Results.StatusCode(204);
        })));

        endpoints.MapGet("/ssf/status", H(http => Handle(http, receivers, async receiver =>
            Json(200, Status(await transmitter.GetAsync(receiver, http.Request.Query["stream_id"].ToString(), http.RequestAborted))))));
        endpoints.MapPost("/ssf/status", H(http => Handle(http, receivers, async receiver =>
            Json(200, Status(await transmitter.SetStatusAsync(receiver, await BodyAsync(http), http.RequestAborted))))));

        endpoints.MapPost("/ssf/poll/{streamId}", (HttpContext http, string streamId) => Handle(http, receivers, async receiver =>
        {
            http.Response.Headers.CacheControl = "no-store";
            return Json(200, await transmitter.PollAsync(receiver, streamId, await BodyAsync(http), http.RequestAborted));
        }));
    }

    /// <summary>A route handler taking only the context (a cast, so it is not mistaken for a RequestDelegate).</summary>
    private static Delegate H(Func<HttpContext, Task<IResult>> handler) => handler;

    private static JsonObject Status(Core.Signals.SsfStream s)
    {
        var o = new JsonObject { ["stream_id"] = s.StreamId, ["status"] = s.Status };
        if (s.StatusReason is { } reason)
        {
            o["reason"] = reason;
        }

        return o;
    }

    private static async Task<IResult> Handle(HttpContext http, SsfReceivers receivers, Func<SsfReceiver, Task<IResult>> handle)
    {
        var receiver = receivers.Authenticate(http.Request.Headers.Authorization.ToString() is { Length: > 0 } h ? h : null);
        if (receiver is null)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer realm=\"credbroker-ssf\"";
            return Error(401, "authentication_failed", "Send 'Authorization: Bearer <receiver secret>' for a configured SSF receiver (CredBroker:Ssf:Receivers).");
        }

        try
        {
            return await handle(receiver);
        }
        catch (SsfException e)
        {
            if (e.Status == 503)
            {
                http.Response.Headers.RetryAfter = "1";
            }

            return Error(e.Status, e.Error, e.Message);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The receiver went away (e.g. during a long poll): nobody to answer.
            return Results.Empty;
        }
    }

    private static async Task<JsonObject> BodyAsync(HttpContext http)
    {
        if (http.Request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new SsfException(415, "invalid_request", "The request body must be application/json.");
        }

        if (http.Request.ContentLength > MaxBodyBytes)
        {
            throw new SsfException(413, "invalid_request", $"The request body exceeds {MaxBodyBytes} bytes.");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBodyBytes)
            {
                throw new SsfException(413, "invalid_request", $"The request body exceeds {MaxBodyBytes} bytes.");
            }
        }

        try
        {
            return JsonNode.Parse(buffer.ToArray(), documentOptions: new JsonDocumentOptions { MaxDepth = 16 }) as JsonObject
                ?? throw new SsfException(400, "invalid_request", "The request body must be a JSON object.");
        }
        catch (JsonException)
        {
            throw new SsfException(400, "invalid_request", "The request body is not valid JSON.");
        }
    }

    private static IResult Json(int status, JsonNode body) => Results.Text(body.ToJsonString(), "application/json", statusCode: status);

    /// <summary>Errors carry RFC 8935/8936-style members (err, description) and OAuth-style ones (error, error_description).</summary>
    private static IResult Error(int status, string error, string message) => Json(status, new JsonObject
    {
        ["err"] = error,
        ["description"] = message,
        ["error"] = error,
        ["error_description"] = message,
    });
}
