using CredBroker.Grpc.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CredBroker.Grpc;

public static class GrpcApplicationBuilderExtensions
{
    /// <summary>
    /// Serves every request reaching this branch of the pipeline as a gRPC call to one of
    /// <paramref name="registry"/>'s methods; anything else gets the protocol's error answer.
    /// </summary>
    public static IApplicationBuilder UseGrpcMethods(this IApplicationBuilder app, GrpcMethodRegistry registry, GrpcServerOptions? options = null)
    {
        var logger = app.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Grpc");
        var dispatcher = new GrpcCallDispatcher(registry, options ?? new GrpcServerOptions(), logger, TimeProvider.System);
        app.Run(dispatcher.HandleAsync);
        return app;
    }
}
