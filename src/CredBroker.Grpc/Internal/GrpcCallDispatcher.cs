using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace CredBroker.Grpc.Internal;

/// <summary>
/// The straight line every request takes: HTTP checks → method lookup → deadline → encoding →
/// handler → status. Errors never escape as HTTP 500s: every call ends with a gRPC status.
/// </summary>
internal sealed partial class GrpcCallDispatcher(GrpcMethodRegistry registry, GrpcServerOptions options, ILogger logger, TimeProvider time)
{
    public async Task HandleAsync(HttpContext http)
    {
        if (!RejectNonGrpc(http))
        {
            return;
        }

        var path = http.Request.Path.Value ?? string.Empty;
        if (!registry.TryGet(path, out var method))
        {
            var service = path.Split('/', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? string.Empty;
            var detail = registry.HasService(service)
                ? $"Method is unimplemented: {path}"
                : $"Service is unimplemented: {service} (path {path})";
            new ServerCall(http, options, null, null).SetStatus(StatusCode.Unimplemented, detail);
            return;
        }

        var encoding = http.Request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (encoding.Length > 0 && encoding is not ("identity" or "gzip"))
        {
            http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
            new ServerCall(http, options, null, null).SetStatus(StatusCode.Unimplemented,
                $"Unsupported grpc-encoding '{encoding}'; supported: {GrpcProtocol.SupportedEncodings}.");
            return;
        }

        var timeout = ResolveTimeout(http, method.IsStreaming);
        using var deadlineCts = timeout is { } t ? new CancellationTokenSource(t, time) : new CancellationTokenSource();
        using var callCts = CancellationTokenSource.CreateLinkedTokenSource(deadlineCts.Token, http.RequestAborted);
        var deadline = timeout is { } d ? time.GetUtcNow() + d : (DateTimeOffset?)null;
        var call = new ServerCall(http, options, encoding.Length == 0 ? null : encoding, ResponseEncoding(http, encoding));
        var context = new GrpcCallContext(call, path, deadline, callCts.Token);

        try
        {
            await InvokeAsync(method, call, context, 0);
            call.SetStatus(StatusCode.OK, null);
        }
        catch (RpcException e)
        {
            LogCallFailed(logger, path, e.StatusCode, e.Detail);
            call.SetStatus(e.StatusCode, e.Detail, e.ToStatusProto());
        }
        catch (OperationCanceledException) when (deadlineCts.IsCancellationRequested)
        {
            LogDeadlineExceeded(logger, path);
            call.SetStatus(StatusCode.DeadlineExceeded, "Deadline exceeded before the call completed.");
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away (cancelled or disconnected): nobody is left to read a status.
            http.Features.Get<IHttpResetFeature>()?.Reset(0x8); // CANCEL
        }
        catch (Exception e)
        {
            LogHandlerError(logger, e, path);
            call.SetStatus(StatusCode.Unknown, "Exception was thrown by the handler.");
        }
    }

    /// <summary>The interceptors, outermost first, then the method itself.</summary>
    private Task InvokeAsync(IGrpcMethod method, ServerCall call, GrpcCallContext context, int index) =>
        index < registry.Interceptors.Count
            ? registry.Interceptors[index](context, () => InvokeAsync(method, call, context, index + 1))
            : method.InvokeAsync(call, context);

    /// <summary>Gzip for clients that accept it and either compressed their request or the server compresses everything.</summary>
    private string? ResponseEncoding(HttpContext http, string requestEncoding)
    {
        var accepted = GrpcProtocol.Accepts(http.Request.Headers[GrpcProtocol.AcceptEncodingHeader].ToString(), "gzip");
        return accepted && (requestEncoding == "gzip" || options.CompressResponses) ? "gzip" : null;
    }

    /// <summary>The spec's HTTP-level answers for requests that are not gRPC calls at all.</summary>
    private static bool RejectNonGrpc(HttpContext http)
    {
        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            http.Response.Headers.Allow = "POST";
            return false;
        }

        if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
        {
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return false;
        }

        if (!HttpProtocol.IsHttp2(http.Request.Protocol))
        {
            http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            http.Response.Headers.Upgrade = "h2";
            return false;
        }

        return true;
    }

    private TimeSpan? ResolveTimeout(HttpContext http, bool streaming)
    {
        var header = http.Request.Headers[GrpcProtocol.TimeoutHeader].ToString();
        TimeSpan? requested = GrpcTimeout.TryParse(header, out var parsed) ? parsed : null;
        if (header.Length > 0 && requested is null)
        {
            LogBadTimeout(logger, header);
        }

        if (streaming || options.MaxUnaryDeadline is not { } cap)
        {
            return requested;
        }

        return requested is { } r && r < cap ? r : cap;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "gRPC call {Method} failed with {StatusCode}: {Detail}")]
    private static partial void LogCallFailed(ILogger logger, string method, StatusCode statusCode, string detail);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "gRPC call {Method} exceeded its deadline")]
    private static partial void LogDeadlineExceeded(ILogger logger, string method);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "gRPC handler for {Method} threw")]
    private static partial void LogHandlerError(ILogger logger, Exception exception, string method);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Malformed grpc-timeout '{Value}'; using the server default")]
    private static partial void LogBadTimeout(ILogger logger, string value);
}
