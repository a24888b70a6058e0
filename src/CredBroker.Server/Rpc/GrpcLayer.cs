using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Grpc.AspNetCore as the broker runs it (the interop test server too): receive and send limits set
/// explicitly, gzip that stops inflating at the receive limit, malformed protobuf answered
/// INVALID_ARGUMENT, and the deadline cap/default in front of the gRPC endpoints.
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

    /// <summary>Call after UseRouting (the middleware reads the selected gRPC method) and before the endpoints run.</summary>
    public static IApplicationBuilder UseGrpcDeadlines(this IApplicationBuilder app, GrpcDeadlines deadlines) =>
        app.Use((http, next) => deadlines.InvokeAsync(http, () => next(http)));
}
