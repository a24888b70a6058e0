using Google.Protobuf;

namespace CredBroker.Grpc.Internal;

internal interface IGrpcMethod
{
    /// <summary>Streaming calls live as long as the client wants: the server's unary deadline cap does not apply.</summary>
    bool IsStreaming { get; }

    Task InvokeAsync(ServerCall call, GrpcCallContext context);
}

internal sealed class UnaryMethod<TRequest, TResponse>(MessageParser<TRequest> parser, UnaryHandler<TRequest, TResponse> handler) : IGrpcMethod
    where TRequest : IMessage<TRequest>
    where TResponse : IMessage<TResponse>
{
    public bool IsStreaming => false;

    public async Task InvokeAsync(ServerCall call, GrpcCallContext context)
    {
        var request = await call.ReadSingleMessageAsync(parser, context.CancellationToken);
        var response = await handler(request, context);
        // A reply after the deadline would be discarded by the client; report what happened instead.
        context.CancellationToken.ThrowIfCancellationRequested();
        await call.WriteMessageAsync(response, context.CancellationToken);
    }
}

internal sealed class ServerStreamingMethod<TRequest, TResponse>(MessageParser<TRequest> parser, ServerStreamingHandler<TRequest, TResponse> handler) : IGrpcMethod
    where TRequest : IMessage<TRequest>
    where TResponse : IMessage<TResponse>
{
    public bool IsStreaming => true;

    public async Task InvokeAsync(ServerCall call, GrpcCallContext context)
    {
        var request = await call.ReadSingleMessageAsync(parser, context.CancellationToken);
        await handler(request, new StreamWriter<TResponse>(call, context.CancellationToken), context);
    }
}

internal sealed class DuplexStreamingMethod<TRequest, TResponse>(MessageParser<TRequest> parser, DuplexStreamingHandler<TRequest, TResponse> handler) : IGrpcMethod
    where TRequest : IMessage<TRequest>
    where TResponse : IMessage<TResponse>
{
    public bool IsStreaming => true;

    public Task InvokeAsync(ServerCall call, GrpcCallContext context) =>
        handler(call.ReadMessagesAsync(parser, context.CancellationToken), new StreamWriter<TResponse>(call, context.CancellationToken), context);
}

internal sealed class StreamWriter<TResponse>(ServerCall call, CancellationToken callToken) : IServerStreamWriter<TResponse>
    where TResponse : IMessage<TResponse>
{
    public async Task WriteAsync(TResponse message, CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken);
        await call.WriteMessageAsync(message, linked.Token);
    }
}
