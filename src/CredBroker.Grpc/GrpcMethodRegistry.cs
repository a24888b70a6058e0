using CredBroker.Grpc.Internal;
using Google.Protobuf;

namespace CredBroker.Grpc;

public delegate Task<TResponse> UnaryHandler<TRequest, TResponse>(TRequest request, GrpcCallContext context);

public delegate Task ServerStreamingHandler<TRequest, TResponse>(
    TRequest request, IServerStreamWriter<TResponse> responseStream, GrpcCallContext context);

/// <summary>Both directions stream; the requests end when the client half-closes.</summary>
public delegate Task DuplexStreamingHandler<TRequest, TResponse>(
    IAsyncEnumerable<TRequest> requests, IServerStreamWriter<TResponse> responseStream, GrpcCallContext context);

/// <summary>
/// Runs around every call of a listener, outermost first: authentication, logging, metrics.
/// Call <paramref name="next"/> to go on; throw <see cref="RpcException"/> to end the call with a status.
/// </summary>
public delegate Task GrpcInterceptor(GrpcCallContext context, Func<Task> next);

/// <summary>
/// The methods one listener serves, registered by full name + parser + handler, and the
/// interceptors around them. This is the whole surface services see of the wire layer, so it
/// can be swapped for Grpc.AspNetCore later.
/// </summary>
public sealed class GrpcMethodRegistry
{
    private readonly Dictionary<string, IGrpcMethod> _methods = new(StringComparer.Ordinal);
    private readonly List<string> _services = [];
    private readonly List<GrpcInterceptor> _interceptors = [];

    /// <summary>Full service names (e.g. <c>credbroker.v1.AgentBroker</c>) with at least one method, in registration order.</summary>
    public IReadOnlyList<string> Services => _services;

    internal IReadOnlyList<GrpcInterceptor> Interceptors => _interceptors;

    public GrpcMethodRegistry AddUnary<TRequest, TResponse>(
        string service, string method, MessageParser<TRequest> parser, UnaryHandler<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
        => Add(service, method, new UnaryMethod<TRequest, TResponse>(parser, handler));

    public GrpcMethodRegistry AddServerStreaming<TRequest, TResponse>(
        string service, string method, MessageParser<TRequest> parser, ServerStreamingHandler<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
        => Add(service, method, new ServerStreamingMethod<TRequest, TResponse>(parser, handler));

    public GrpcMethodRegistry AddDuplexStreaming<TRequest, TResponse>(
        string service, string method, MessageParser<TRequest> parser, DuplexStreamingHandler<TRequest, TResponse> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
        => Add(service, method, new DuplexStreamingMethod<TRequest, TResponse>(parser, handler));

    /// <summary>Adds an interceptor; the first added runs outermost.</summary>
    public GrpcMethodRegistry Use(GrpcInterceptor interceptor)
    {
        _interceptors.Add(interceptor);
        return this;
    }

    internal bool TryGet(string path, out IGrpcMethod method) => _methods.TryGetValue(path, out method!);

    internal bool HasService(string service) => _services.Contains(service, StringComparer.Ordinal);

    private GrpcMethodRegistry Add(string service, string method, IGrpcMethod implementation)
    {
        if (!_methods.TryAdd($"/{service}/{method}", implementation))
        {
            throw new InvalidOperationException($"/{service}/{method} is registered twice.");
        }

        if (!HasService(service))
        {
            _services.Add(service);
        }

        return this;
    }
}
