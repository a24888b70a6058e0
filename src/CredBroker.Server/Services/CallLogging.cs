using System.Diagnostics;
using CredBroker.Grpc;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>One structured log line per call: method, status, duration, peer. Never metadata (it carries credentials).</summary>
public static partial class CallLogging
{
    public static GrpcInterceptor Interceptor(ILogger logger) => async (context, next) =>
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next();
            LogCall(logger, context.Method, StatusCode.OK, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Peer);
        }
        catch (RpcException e)
        {
            LogCall(logger, context.Method, e.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Peer);
            throw;
        }
    };

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "gRPC {Method} → {StatusCode} in {ElapsedMs:0.0} ms from {Peer}")]
    private static partial void LogCall(ILogger logger, string method, StatusCode statusCode, double elapsedMs, string peer);
}
