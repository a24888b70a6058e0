using System.Security.Cryptography.X509Certificates;
using Grpc.Core;

namespace CredBroker.Server.Rpc;

/// <summary>What the broker reads of a call beyond its message: metadata, the TLS client certificate, the listener.</summary>
public static class CallContextExtensions
{
    /// <summary>An ASCII metadata value (names are lower case), or null when absent.</summary>
    public static string? Header(this ServerCallContext context, string name) => context.RequestHeaders.GetValue(name);

    /// <summary>The client's TLS certificate, when it presented one (already validated by the listener).</summary>
    public static X509Certificate2? ClientCertificate(this ServerCallContext context) => context.GetHttpContext().Connection.ClientCertificate;

    /// <summary>The local port the call arrived on: which listener it is.</summary>
    public static int LocalPort(this ServerCallContext context) => context.GetHttpContext().Connection.LocalPort;

    /// <summary>The peer's address and port, for logs and audit (e.g. <c>127.0.0.1:51234</c>).</summary>
    public static string RemoteEndpoint(this ServerCallContext context) => RemoteEndpoint(context.GetHttpContext());

    /// <summary>The same for any request on the broker's listeners (the request log line).</summary>
    public static string RemoteEndpoint(HttpContext http) => $"{http.Connection.RemoteIpAddress}:{http.Connection.RemotePort}";
}
