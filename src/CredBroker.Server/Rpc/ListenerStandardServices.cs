using Grpc.Core;
using Grpc.Health.V1;

namespace CredBroker.Server.Rpc;

/// <summary>grpc.health.v1.Health per listener: each listener reports its own services (Grpc.HealthCheck does the work).</summary>
public sealed class ListenerHealthService(GrpcListeners listeners) : Health.HealthBase
{
    public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
    {
        var listener = listeners.For(context);
        return request.Service.Length == 0 || listener.ServiceNames.Contains(request.Service)
            ? listener.Health.Check(request, context)
            : throw RpcErrors.Create(StatusCode.NotFound,
                $"Unknown service '{(request.Service.Length <= 64 ? request.Service : request.Service[..64] + "…")}'; this listener reports \"\" and {string.Join(", ", listener.ServiceNames)}.");
    }

    public override Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context) =>
        listeners.For(context).Health.Watch(request, responseStream, context);
}

/// <summary>grpc.reflection.v1 per listener: lists and describes only that listener's services.</summary>
public sealed class ListenerReflectionV1Service(GrpcListeners listeners) : Grpc.Reflection.V1.ServerReflection.ServerReflectionBase
{
    public override Task ServerReflectionInfo(
        IAsyncStreamReader<Grpc.Reflection.V1.ServerReflectionRequest> requestStream,
        IServerStreamWriter<Grpc.Reflection.V1.ServerReflectionResponse> responseStream,
        ServerCallContext context) =>
        listeners.For(context).ReflectionV1.ServerReflectionInfo(requestStream, responseStream, context);
}

/// <summary>grpc.reflection.v1alpha per listener (grpcurl and older tools still ask for it).</summary>
public sealed class ListenerReflectionV1AlphaService(GrpcListeners listeners) : Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionBase
{
    public override Task ServerReflectionInfo(
        IAsyncStreamReader<Grpc.Reflection.V1Alpha.ServerReflectionRequest> requestStream,
        IServerStreamWriter<Grpc.Reflection.V1Alpha.ServerReflectionResponse> responseStream,
        ServerCallContext context) =>
        listeners.For(context).ReflectionV1Alpha.ServerReflectionInfo(requestStream, responseStream, context);
}

/// <summary>
/// Keeps every listener's health status current from the readiness checks (Redis, audit, signing
/// keys, policy) in the background: health calls read a cached status and cost no Redis round
/// trip, so unauthenticated probes cannot load the store.
/// </summary>
public sealed partial class ListenerHealthRefresher(
    GrpcListeners listeners, Func<CancellationToken, Task<bool>> ready, TimeSpan interval, ILogger<ListenerHealthRefresher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        bool? last = null;
        using var timer = new PeriodicTimer(interval);
        do
        {
            bool serving;
            try
            {
                serving = await ready(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                serving = false;
            }

            if (serving != last)
            {
                foreach (var listener in listeners.All)
                {
                    listener.SetServing(serving);
                }

                LogHealth(logger, serving ? "SERVING" : "NOT_SERVING");
                last = serving;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "gRPC health is now {Status}")]
    private static partial void LogHealth(ILogger logger, string status);
}
