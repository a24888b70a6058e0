using CredBroker.Core.Broker;
using CredBroker.Grpc;
using CredBroker.Server.Auth;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using StatusCode = CredBroker.Grpc.StatusCode;

namespace CredBroker.Server.Services;

/// <summary>
/// The plumbing between the wire and the broker, so services hold none: an interceptor that
/// authenticates every call (except the open standard services), and the mapping from broker
/// refusals to gRPC statuses with machine-readable details.
/// </summary>
public static class CallGuard
{
    /// <summary>The <c>domain</c> of every google.rpc.ErrorInfo the broker sends.</summary>
    public const string ErrorDomain = "credbroker.dev";

    /// <summary>
    /// Authenticates each call with <paramref name="authenticator"/> and keeps the caller for the
    /// handler; <paramref name="openServices"/> (health, reflection) answer without credentials.
    /// </summary>
    public static GrpcInterceptor Authenticate(ICallerAuthenticator authenticator, IReadOnlySet<string> openServices) =>
        async (context, next) =>
        {
            if (!openServices.Contains(context.Service))
            {
                context.Set(await authenticator.AuthenticateAsync(context));
            }

            await next();
        };

    /// <summary>After <see cref="Authenticate"/> on the operator listener: the caller must hold the role the RPC needs.</summary>
    public static GrpcInterceptor AuthorizeOperators(IReadOnlySet<string> openServices) =>
        async (context, next) =>
        {
            if (!openServices.Contains(context.Service))
            {
                var caller = Caller(context);
                var rpc = context.Method[(context.Method.LastIndexOf('/') + 1)..];
                var required = OperatorPermissions.RequiredRole(rpc);
                if (!OperatorPermissions.Allows(caller.Roles, required))
                {
                    throw new RpcException(StatusCode.PermissionDenied,
                        $"{rpc} needs the operator role '{required.ToString().ToLowerInvariant()}'; '{caller.Subject}' has: {(caller.Roles.Count == 0 ? "none" : string.Join(", ", caller.Roles.Select(r => r.ToString().ToLowerInvariant())))}.");
                }
            }

            await next();
        };

    /// <summary>The authenticated caller as an agent; a workload that maps to no agent is refused.</summary>
    public static CallerIdentity Agent(GrpcCallContext context)
    {
        var caller = Caller(context);
        return caller.AgentId is { } agentId
            ? new CallerIdentity(agentId, caller.Method, caller.CertificateThumbprint)
            : throw new RpcException(StatusCode.PermissionDenied, $"Workload '{caller.Subject}' is authenticated but maps to no agent; add it to an agent's identities.");
    }

    /// <summary>The caller the interceptor authenticated; any authenticated workload may validate tokens (RFC 7662).</summary>
    public static AuthenticatedCaller Caller(GrpcCallContext context) =>
        context.Get<AuthenticatedCaller>() ?? throw new InvalidOperationException($"{context.Method} ran without the authentication interceptor.");

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
        var (code, reason) = e.Kind switch
        {
            BrokerErrorKind.InvalidArgument => (StatusCode.InvalidArgument, "INVALID_REQUEST"),
            BrokerErrorKind.Unauthenticated => (StatusCode.Unauthenticated, "UNAUTHENTICATED"),
            BrokerErrorKind.PermissionDenied => (StatusCode.PermissionDenied, "POLICY_DENIED"),
            BrokerErrorKind.NotFound => (StatusCode.NotFound, "NOT_FOUND"),
            BrokerErrorKind.AlreadyExists => (StatusCode.AlreadyExists, "TASK_EXISTS"),
            BrokerErrorKind.FailedPrecondition => (StatusCode.FailedPrecondition, "LEASE_NOT_OPEN"),
            BrokerErrorKind.ResourceExhausted => (StatusCode.ResourceExhausted, "QUOTA_EXCEEDED"),
            BrokerErrorKind.Unavailable => (StatusCode.Unavailable, "STORE_UNAVAILABLE"),
            _ => (StatusCode.Internal, "INTERNAL"),
        };
        var info = new ErrorInfo { Reason = reason, Domain = ErrorDomain };
        if (e.RuleIds.Count > 0)
        {
            info.Metadata["rules"] = string.Join(",", e.RuleIds);
        }

        var details = new List<IMessage> { info };
        if (e.RetryAfter is { } retryAfter)
        {
            details.Add(new RetryInfo { RetryDelay = Duration.FromTimeSpan(retryAfter) });
        }

        var message = e.RuleIds.Count > 0 && code == StatusCode.PermissionDenied
            ? $"{e.Message} [rules: {string.Join(", ", e.RuleIds)}]"
            : e.Message;
        return new RpcException(code, message, details, e);
    }
}
