using Grpc.Health.V1;

namespace CredBroker.Grpc;

/// <summary>grpc.health.v1.Health on every listener, without credentials (it reveals nothing secret).</summary>
public sealed class HealthService(Func<CancellationToken, Task<bool>> ready, IReadOnlyCollection<string> services)
{
    public const string ServiceName = "grpc.health.v1.Health";

    public void Register(GrpcMethodRegistry registry) => registry
        .AddUnary<HealthCheckRequest, HealthCheckResponse>(ServiceName, "Check", HealthCheckRequest.Parser, CheckAsync)
        .AddServerStreaming<HealthCheckRequest, HealthCheckResponse>(ServiceName, "Watch", HealthCheckRequest.Parser, WatchAsync);

    private async Task<HealthCheckResponse> CheckAsync(HealthCheckRequest request, GrpcCallContext context)
    {
        if (request.Service.Length > 0 && !services.Contains(request.Service))
        {
            throw new RpcException(StatusCode.NotFound, $"Unknown service '{request.Service}'.");
        }

        return new HealthCheckResponse { Status = await StatusAsync(context.CancellationToken) };
    }

    private async Task WatchAsync(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> stream, GrpcCallContext context)
    {
        if (request.Service.Length > 0 && !services.Contains(request.Service))
        {
            // Per health-checking.md the stream stays open: the service may appear later.
            await stream.WriteAsync(new HealthCheckResponse { Status = HealthCheckResponse.Types.ServingStatus.ServiceUnknown });
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }

        HealthCheckResponse.Types.ServingStatus? last = null;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        do
        {
            var status = await StatusAsync(context.CancellationToken);
            if (status != last)
            {
                await stream.WriteAsync(new HealthCheckResponse { Status = status });
                last = status;
            }
        }
        while (await timer.WaitForNextTickAsync(context.CancellationToken));
    }

    private async Task<HealthCheckResponse.Types.ServingStatus> StatusAsync(CancellationToken cancellationToken) =>
        await ready(cancellationToken) ? HealthCheckResponse.Types.ServingStatus.Serving : HealthCheckResponse.Types.ServingStatus.NotServing;
}
