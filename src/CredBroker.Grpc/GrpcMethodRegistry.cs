using CredBroker.Grpc.Internal;
using Google.Protobuf;

namespace CredBroker.Grpc;

public delegate Task<TResponse> UnaryHandler<TRequest, TResponse>(TRequest request, GrpcCallContext context);

public delegate Task ServerStreamingHandler<TRequest, TResponse>(
    TRequest request, IServerStreamWriter<TResponse> responseStream, GrpcCallContext context);

/// <summary>
/// The methods one listener serves, registered by full name + parser + handler. This is the whole
/// surface services see of the wire layer, so it can be swapped for Grpc.AspNetCore later.
/// </summary>
public sealed class GrpcMethodRegistry
{
    private readonly Dictionary<string, IGrpcMethod> _methods = new(StringComparer.Ordinal);
    private readonly HashSet<string> _services = new(StringComparer.Ordinal);

    /// <summary>Full service names (e.g. <c>credbroker.v1.AgentBroker</c>) with at least one method.</summary>
    public IReadOnlyCollection<string> Services => _services;

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

    internal bool TryGet(string path, out IGrpcMethod method) => _methods.TryGetValue(path, out method!);

    internal bool HasService(string service) => _services.Contains(service);

    private GrpcMethodRegistry Add(string service, string method, IGrpcMethod implementation)
    {
        if (!_methods.TryAdd($"/{service}/{method}", implementation))
        {
            throw new InvalidOperationException($"/{service}/{method} is registered twice.");
        }

        _services.Add(service);
        return this;
    }
}
