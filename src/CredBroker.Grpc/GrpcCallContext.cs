using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Http;

namespace CredBroker.Grpc;

/// <summary>What a handler may know about the call: its method, metadata, deadline and peer.</summary>
public sealed class GrpcCallContext
{
    private readonly HttpContext _httpContext;

    internal GrpcCallContext(HttpContext httpContext, string method, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        _httpContext = httpContext;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The full method name, e.g. <c>/credbroker.v1.AgentBroker/BeginTask</c>.</summary>
    public string Method { get; }

    /// <summary>When the client gives up (from `grpc-timeout`), or null for no deadline.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>Fires when the client cancels, disconnects or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The client's TLS certificate, when it presented one.</summary>
    public X509Certificate2? ClientCertificate => _httpContext.Connection.ClientCertificate;

    public int LocalPort => _httpContext.Connection.LocalPort;

    /// <summary>An ASCII metadata value (header names are lower case), or null when absent.</summary>
    public string? GetMetadata(string name)
    {
        var values = _httpContext.Request.Headers[name];
        return values.Count == 0 ? null : values[0];
    }

    /// <summary>A binary (`-bin`) metadata value, base64-decoded; null when absent or malformed.</summary>
    public byte[]? GetBinaryMetadata(string name)
    {
        if (!name.EndsWith("-bin", StringComparison.Ordinal))
        {
            throw new ArgumentException("Binary metadata names end in -bin.", nameof(name));
        }

        var value = GetMetadata(name);
        return value is null ? null : Base64Codec.TryDecode(value);
    }
}
