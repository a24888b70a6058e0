using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Grpc.AspNetCore as the broker runs it (the interop test server too): receive and send limits set
/// explicitly, gzip that stops inflating at the receive limit, malformed protobuf answered
/// INVALID_ARGUMENT, and in front of the gRPC endpoints the deadline cap/default and the frame check.
/// </summary>
public static class GrpcLayer
{
    public static IGrpcServerBuilder AddGrpcLayer(this IServiceCollection services, int maxReceiveMessageSize, int maxSendMessageSize, bool compressResponses)
    {
        var builder = services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = maxReceiveMessageSize;
            o.MaxSendMessageSize = maxSendMessageSize;
            o.EnableDetailedErrors = false;
            o.CompressionProviders = [new BoundedGzipCompressionProvider(maxReceiveMessageSize)];
            o.ResponseCompressionAlgorithm = compressResponses ? "gzip" : null;
        });
        services.RemoveAll(typeof(IServiceMethodProvider<>));
        services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(CheckedMessagesMethodProvider<>));
        return builder;
    }

    /// <summary>
    /// The deadline cap/default and the frame check; call after UseRouting (both read the selected
    /// gRPC method) and before the endpoints run.
    /// </summary>
    public static IApplicationBuilder UseGrpcRequestChecks(this IApplicationBuilder app, GrpcDeadlines deadlines) =>
        app.Use((http, next) => deadlines.InvokeAsync(http, () => next(http)))
            .Use((http, next) => GrpcFrameCheck.InvokeAsync(http, () => next(http)));
}
