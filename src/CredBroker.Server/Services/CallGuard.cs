using CredBroker.Core.Broker;
using CredBroker.Server.Auth;
using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Services;

/// <summary>What handlers read of the caller <see cref="BrokerCallInterceptor"/> authenticated.</summary>
public static class CallGuard
{
    private static readonly object CallerKey = new();

    /// <summary>The authenticated caller as an agent; a workload that maps to no agent is refused.</summary>
    public static CallerIdentity Agent(ServerCallContext context)
    {
        var caller = Caller(context);
        return caller.AgentId is { } agentId
            ? new CallerIdentity(agentId, caller.Method, caller.CertificateThumbprint, caller.Claims)
            : throw RpcErrors.Create(StatusCode.PermissionDenied, $"Workload '{caller.Subject}' is authenticated but maps to no agent; add it to an agent's identities.", "NO_AGENT");
    }

    /// <summary>The caller the interceptor authenticated; any authenticated workload may validate tokens (RFC 7662).</summary>
    public static AuthenticatedCaller Caller(ServerCallContext context) =>
        context.UserState.TryGetValue(CallerKey, out var caller) && caller is AuthenticatedCaller authenticated
            ? authenticated
            : throw new InvalidOperationException($"{context.Method} ran without the authentication interceptor.");

    internal static void SetCaller(ServerCallContext context, AuthenticatedCaller caller) => context.UserState[CallerKey] = caller;
}
