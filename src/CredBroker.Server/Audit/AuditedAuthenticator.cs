using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Server.Rpc;
using Grpc.Core;
using CredBroker.Server.Auth;

namespace CredBroker.Server.Audit;

/// <summary>
/// Records every refused operator credential (who tried, from where, for which method, why) before
/// the refusal is returned. The call is refused either way; a failed audit append does not turn
/// the refusal into anything else.
/// </summary>
public sealed class AuditedAuthenticator(ICallerAuthenticator inner, IAuditEvents audit, TimeProvider time) : ICallerAuthenticator
{
    public async Task<AuthenticatedCaller> AuthenticateAsync(ServerCallContext context)
    {
        try
        {
            return await inner.AuthenticateAsync(context);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            try
            {
                await audit.RaiseAsync(new AuditEvent
                {
                    Type = AuditEventType.OperatorAuthFailed,
                    Time = time.GetUtcNow(),
                    Caller = context.RemoteEndpoint(),
                    Reason = e.Status.Detail,
                    Details = new Dictionary<string, string> { ["method"] = context.Method, ["status"] = e.StatusCode.ToString() },
                }, CancellationToken.None);
            }
            catch (BrokerException)
            {
                // Audit down: the caller is refused anyway, and the append failure is counted in metrics.
            }

            throw;
        }
    }
}
