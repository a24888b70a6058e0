using Grpc.Core;

namespace CredBroker.Server.Rpc;

/// <summary>The gRPC status a call ended with, kept on the HttpContext for the request log line.</summary>
public static class CallOutcome
{
    private static readonly object Key = new();

    public static void Set(HttpContext http, StatusCode code) => http.Items[Key] = code;

    public static StatusCode? Of(HttpContext http) => http.Items.TryGetValue(Key, out var code) ? (StatusCode?)code : null;
}
