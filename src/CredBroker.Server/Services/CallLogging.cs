using System.Diagnostics;
using CredBroker.Grpc;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>
/// One structured log line per call: method, status, duration, peer — never metadata (it carries
/// credentials). Successful calls log at Debug (the hot path), refusals at Information.
/// </summary>
public static partial class CallLogging
{
    public static GrpcInterceptor Interceptor(ILogger logger) => async (context, next) =>
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next();
            LogOk(logger, context.Method, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Peer);
        }
        catch (RpcException e)
        {
            LogCall(logger, context.Method, e.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Peer);
            throw;
        }
    };

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "gRPC {Method} → {StatusCode} in {ElapsedMs:0.0} ms from {Peer}")]
    private static partial void LogCall(ILogger logger, string method, StatusCode statusCode, double elapsedMs, string peer);

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "gRPC {Method} → OK in {ElapsedMs:0.0} ms from {Peer}")]
    private static partial void LogOk(ILogger logger, string method, double elapsedMs, string peer);
}
