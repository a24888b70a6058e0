using CredBroker.Server.Auth;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Grpc.Reflection;

namespace CredBroker.Server.Rpc;

/// <summary>
/// One gRPC listener (port): the services it serves, who may call them, and its own health and
/// reflection answers. The Operator service exists only on the operator listener; the agent
/// listener neither serves nor lists it.
/// </summary>
public sealed class GrpcListener
{
    /// <summary>Standard services every listener answers without credentials: they reveal nothing secret.</summary>
    public static readonly IReadOnlySet<string> OpenServices = new HashSet<string>(StringComparer.Ordinal)
    {
        Grpc.Health.V1.Health.Descriptor.FullName,
        Grpc.Reflection.V1.ServerReflection.Descriptor.FullName,
        Grpc.Reflection.V1Alpha.ServerReflection.Descriptor.FullName,
    };

    public GrpcListener(string name, int port, ICallerAuthenticator authenticator, bool operators, IReadOnlyList<ServiceDescriptor> services)
    {
        Name = name;
        Port = port;
        Authenticator = authenticator;
        Operators = operators;
        Services = services.Select(s => s.FullName).Concat(OpenServices).ToHashSet(StringComparer.Ordinal);
        IReadOnlyList<ServiceDescriptor> listed = [.. services, Grpc.Health.V1.Health.Descriptor, Grpc.Reflection.V1.ServerReflection.Descriptor, Grpc.Reflection.V1Alpha.ServerReflection.Descriptor];
        ReflectionV1 = new ReflectionV1ServiceImpl(listed);
        ReflectionV1Alpha = new ReflectionServiceImpl(listed);
        Health = new HealthServiceImpl();
        ServiceNames = services.Select(s => s.FullName).ToList();
        SetServing(false);
    }

    public string Name { get; }

    public int Port { get; }

    public ICallerAuthenticator Authenticator { get; }

    /// <summary>True on the operator listener: calls also need the operator role their RPC requires.</summary>
    public bool Operators { get; }

    /// <summary>Every service callable here (the listener's own and the open standard ones).</summary>
    public IReadOnlySet<string> Services { get; }

    /// <summary>The listener's own services (health reports them by name).</summary>
    public IReadOnlyList<string> ServiceNames { get; }

    public ReflectionV1ServiceImpl ReflectionV1 { get; }

    public ReflectionServiceImpl ReflectionV1Alpha { get; }

    public HealthServiceImpl Health { get; }

    /// <summary>Sets the serving status of "" and of each of the listener's services.</summary>
    public void SetServing(bool serving)
    {
        var status = serving ? HealthCheckResponse.Types.ServingStatus.Serving : HealthCheckResponse.Types.ServingStatus.NotServing;
        Health.SetStatus(string.Empty, status);
        foreach (var service in ServiceNames)
        {
            Health.SetStatus(service, status);
        }
    }
}

/// <summary>The broker's gRPC listeners, found by the local port a call arrived on.</summary>
public sealed class GrpcListeners(IReadOnlyList<GrpcListener> listeners)
{
    public IReadOnlyList<GrpcListener> All => listeners;

    public GrpcListener? Find(int port)
    {
        foreach (var listener in listeners)
        {
            if (listener.Port == port)
            {
                return listener;
            }
        }

        return null;
    }

    /// <summary>The listener of a call; calls only reach gRPC endpoints on a listener's port (see <see cref="ListenerEndpointPolicy"/>).</summary>
    public GrpcListener For(ServerCallContext context) =>
        Find(context.LocalPort()) ?? throw new InvalidOperationException($"{context.Method} arrived on port {context.LocalPort()}, which is no gRPC listener.");
}
