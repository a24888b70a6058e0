using CredBroker.Grpc;

namespace CredBroker.Server.Auth;

/// <summary>A listener with no configured credential type: every call is refused, never let through.</summary>
public sealed class RejectAllAuthenticator(string listener) : ICallerAuthenticator
{
    public Task<AuthenticatedCaller> AuthenticateAsync(GrpcCallContext context) =>
        throw new RpcException(StatusCode.Unauthenticated, $"No {listener} credentials are configured on this listener.");
}
