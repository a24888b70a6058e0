using System.Diagnostics;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Server.Auth;
using CredBroker.Server.Metrics;
using CredBroker.Server.Services;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CredBroker.Server.Rpc;

/// <summary>
/// The one interceptor around every broker call: authenticates the caller for the listener the call
/// arrived on (health and reflection are open), checks the operator role on the operator listener,
/// turns broker refusals into a status with ErrorInfo, never lets an internal error out as UNKNOWN
/// with a stack trace, records the call metrics, and leaves the final status for the request log
/// line (<see cref="Hosting.Telemetry.UseBrokerRequestLogging"/>).
/// </summary>
public sealed partial class BrokerCallInterceptor(GrpcListeners listeners, BrokerMetrics metrics, StreamLimiter streams, ILogger<BrokerCallInterceptor> logger) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, () => continuation(request, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        }, stream: true);

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, () => continuation(requestStream, context));

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, async () =>
        {
            await continuation(requestStream, responseStream, context);
            return true;
        });

    private async Task<T> RunAsync<T>(ServerCallContext context, Func<Task<T>> call, bool stream = false)
    {
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        IDisposable? slot = null;
        try
        {
            var caller = await AuthorizeAsync(context);
            if (stream && caller is not null)
            {
                // Server streams are held open for long: at most MaxStreamsPerIdentity at once per caller and listener.
                slot = streams.TryAcquire(listeners.For(context).Name + "|" + caller.Subject)
                    ?? throw RpcErrors.Create(StatusCode.ResourceExhausted,
                        $"'{caller.Subject}' already has {streams.MaxPerIdentity} open streams on this listener (CredBroker:Listen:Grpc:MaxStreamsPerIdentity); close one, or resume a stream instead of opening another.",
                        "STREAM_LIMIT");
            }

            return await call();
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        catch (BrokerException e)
        {
            var refusal = RpcErrors.From(e);
            code = refusal.StatusCode;
            throw refusal;
        }
        catch (StoreUnavailableException e)
        {
            code = StatusCode.Unavailable;
            throw RpcErrors.Create(StatusCode.Unavailable, $"The lease store is unavailable ({e.Message}); retry shortly.");
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The client cancelled, went away or its deadline passed: the server already has its status.
            code = context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
            throw;
        }
        catch (Exception e)
        {
            code = StatusCode.Internal;
            var id = Guid.NewGuid().ToString("N")[..12];
            LogInternalError(logger, e, context.Method, id);
            throw RpcErrors.Create(StatusCode.Internal, $"The broker failed to handle the call (error id {id}; the broker log has the details).");
        }
        finally
        {
            slot?.Dispose();
            metrics.RecordCall(context.Method, code, Stopwatch.GetElapsedTime(started));
            CallOutcome.Set(context.GetHttpContext(), code);
        }
    }

    /// <summary>The authenticated caller, or null for the open services (health, reflection).</summary>
    private async Task<AuthenticatedCaller?> AuthorizeAsync(ServerCallContext context)
    {
        var listener = listeners.For(context);
        var service = ServiceOf(context.Method);
        if (GrpcListener.OpenServices.Contains(service))
        {
            return null;
        }

        var caller = await listener.Authenticator.AuthenticateAsync(context);
        CallGuard.SetCaller(context, caller);
        if (listener.Operators)
        {
            var rpc = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            var required = OperatorPermissions.RequiredRole(rpc);
            if (!OperatorPermissions.Allows(caller.Roles, required))
            {
                throw RpcErrors.Create(StatusCode.PermissionDenied,
                    $"{rpc} needs the operator role '{required.ToString().ToLowerInvariant()}'; '{caller.Subject}' has: {(caller.Roles.Count == 0 ? "none" : string.Join(", ", caller.Roles.Select(r => r.ToString().ToLowerInvariant())))}.",
                    "OPERATOR_ROLE_REQUIRED");
            }
        }

        return caller;
    }

    /// <summary><c>/pkg.Service/Method</c> → <c>pkg.Service</c>.</summary>
    private static string ServiceOf(string method)
    {
        var slash = method.LastIndexOf('/');
        return slash > 1 ? method[1..slash] : method;
    }

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "gRPC {Method} failed inside the broker (error id {ErrorId})")]
    private static partial void LogInternalError(ILogger logger, Exception exception, string method, string errorId);
}
