using System.Security.Cryptography.X509Certificates;
using CredBroker.Grpc.Internal;

namespace CredBroker.Grpc;

/// <summary>What a handler may know about the call: its method, metadata, deadline and peer.</summary>
public sealed class GrpcCallContext
{
    private readonly ServerCall _call;
    private readonly Dictionary<Type, object> _features = [];

    internal GrpcCallContext(ServerCall call, string method, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        _call = call;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The full method name, e.g. <c>/credbroker.v1.AgentBroker/BeginTask</c>.</summary>
    public string Method { get; }

    /// <summary>The full service name, e.g. <c>credbroker.v1.AgentBroker</c>.</summary>
    public string Service => Method.Split('/', StringSplitOptions.RemoveEmptyEntries)[0];

    /// <summary>When the client gives up (from `grpc-timeout` or the server default), or null for no deadline.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>Fires when the client cancels, disconnects or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The client's TLS certificate, when it presented one (already validated by the listener).</summary>
    public X509Certificate2? ClientCertificate => _call.Http.Connection.ClientCertificate;

    public int LocalPort => _call.Http.Connection.LocalPort;

    /// <summary>The peer's address, for logs and audit.</summary>
    public string Peer => $"{_call.Http.Connection.RemoteIpAddress}:{_call.Http.Connection.RemotePort}";

    /// <summary>Metadata sent with the first response message (or with the status when there is none).</summary>
    public Metadata ResponseHeaders => _call.ResponseHeaders;

    /// <summary>Metadata sent with the status at the end of the call.</summary>
    public Metadata ResponseTrailers => _call.ResponseTrailers;

    /// <summary>An ASCII metadata value (header names are lower case), or null when absent.</summary>
    public string? GetMetadata(string name)
    {
        var values = _call.Http.Request.Headers[name];
        return values.Count == 0 ? null : values[0];
    }

    /// <summary>A binary (`-bin`) metadata value, base64-decoded (padded or not); null when absent or malformed.</summary>
    public byte[]? GetBinaryMetadata(string name)
    {
        if (!name.EndsWith("-bin", StringComparison.Ordinal))
        {
            throw new ArgumentException("Binary metadata names end in -bin.", nameof(name));
        }

        var value = GetMetadata(name);
        return value is null ? null : Base64Codec.TryDecode(value);
    }

    /// <summary>Every custom (non-reserved) request metadata entry, binary values decoded; malformed entries are skipped.</summary>
    public Metadata RequestMetadata() =>
        Metadata.FromHeaders(_call.Http.Request.Headers.Select(h => (h.Key, (IEnumerable<string?>)h.Value)));

    /// <summary>Per-call state set by interceptors for handlers (e.g. the authenticated caller).</summary>
    public void Set<T>(T value)
        where T : class => _features[typeof(T)] = value;

    /// <summary>State an interceptor set with <see cref="Set{T}"/>, or null.</summary>
    public T? Get<T>()
        where T : class => _features.TryGetValue(typeof(T), out var value) ? (T)value : null;
}
