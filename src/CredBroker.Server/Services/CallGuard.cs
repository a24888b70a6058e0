using CredBroker.Core.Broker;
using CredBroker.Grpc;
using CredBroker.Server.Auth;

namespace CredBroker.Server.Services;

/// <summary>Authenticates a call and turns broker refusals into gRPC statuses with the rule ids that decided them.</summary>
public sealed class CallGuard(ICallerAuthenticator authenticator)
{
    /// <summary>Authenticates the caller as an agent; a workload that maps to no agent is refused.</summary>
    public async Task<CallerIdentity> AgentAsync(GrpcCallContext context)
    {
        var caller = await authenticator.AuthenticateAsync(context);
        return caller.AgentId is { } agentId
            ? new CallerIdentity(agentId, caller.Method)
            : throw new RpcException(StatusCode.PermissionDenied, $"Workload '{caller.Subject}' is authenticated but maps to no agent; add it to an agent's identities.");
    }

    /// <summary>Any authenticated workload may validate tokens (RFC 7662 requires the caller to authenticate).</summary>
    public Task<AuthenticatedCaller> ValidatorAsync(GrpcCallContext context) => authenticator.AuthenticateAsync(context);

    public static async Task<T> RunAsync<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (BrokerException e)
        {
            throw ToRpc(e);
        }
    }

    public static RpcException ToRpc(BrokerException e)
    {
        var code = e.Kind switch
        {
            BrokerErrorKind.InvalidArgument => StatusCode.InvalidArgument,
            BrokerErrorKind.Unauthenticated => StatusCode.Unauthenticated,
            BrokerErrorKind.PermissionDenied => StatusCode.PermissionDenied,
            BrokerErrorKind.NotFound => StatusCode.NotFound,
            BrokerErrorKind.AlreadyExists => StatusCode.AlreadyExists,
            BrokerErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
            BrokerErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
            BrokerErrorKind.Unavailable => StatusCode.Unavailable,
            _ => StatusCode.Internal,
        };
        var message = e.RuleIds.Count > 0 && code == StatusCode.PermissionDenied
            ? $"{e.Message} [rules: {string.Join(", ", e.RuleIds)}]"
            : e.Message;
        return new RpcException(code, message, e);
    }
}
