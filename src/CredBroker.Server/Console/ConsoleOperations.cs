using CredBroker.Core.Broker;
using CredBroker.Server.Auth;
using CredBroker.Server.Rpc;
using CredBroker.Server.Services;
using Grpc.Core;

namespace CredBroker.Server.WebConsole;

/// <summary>An action's result: the response, or the refusal as the gRPC API would have stated it.</summary>
internal sealed record Outcome<T>(T? Value, StatusCode Code, string? Refusal)
{
    public bool Ok => Refusal is null;

    /// <summary>The HTTP status a refused page is served with.</summary>
    public int HttpStatus => Code switch
    {
        StatusCode.OK => StatusCodes.Status200OK,
        StatusCode.PermissionDenied => StatusCodes.Status403Forbidden,
        StatusCode.Unauthenticated => StatusCodes.Status401Unauthorized,
        StatusCode.NotFound => StatusCodes.Status404NotFound,
        StatusCode.FailedPrecondition or StatusCode.Aborted or StatusCode.AlreadyExists => StatusCodes.Status409Conflict,
        StatusCode.ResourceExhausted => StatusCodes.Status429TooManyRequests,
        StatusCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        StatusCode.Internal or StatusCode.Unknown => StatusCodes.Status500InternalServerError,
        _ => StatusCodes.Status400BadRequest,
    };
}

/// <summary>
/// Runs a console action through the gRPC Operator service's own handlers (<see cref="OperatorService"/>,
/// hence Core's LeaseAdministration, ApprovalDesk and the policy operations): the same role each RPC
/// needs (<see cref="OperatorPermissions"/>), the same audit records attributed to the signed-in
/// operator, and the same refusals, returned as readable messages instead of thrown.
/// </summary>
internal sealed partial class ConsoleOperations(OperatorService service, ILogger<ConsoleOperations> logger)
{
    public OperatorService Service => service;

    public static bool Allows(ConsoleUser user, string rpc) => OperatorPermissions.Allows(user.Roles, OperatorPermissions.RequiredRole(rpc));

    public async Task<Outcome<T>> RunAsync<T>(HttpContext http, string rpc, Func<OperatorService, ServerCallContext, Task<T>> call)
    {
        var user = ConsoleUser.From(http.User);
        var required = OperatorPermissions.RequiredRole(rpc);
        if (user is null || !OperatorPermissions.Allows(user.Roles, required))
        {
            var roles = user is null || user.Roles.Count == 0 ? "none" : string.Join(", ", user.Roles.Select(r => r.ToString().ToLowerInvariant()));
            return new Outcome<T>(default, StatusCode.PermissionDenied,
                $"{rpc} needs the operator role '{required.ToString().ToLowerInvariant()}'; '{user?.Subject ?? "anonymous"}' has: {roles}.");
        }

        var context = new ConsoleCallContext(rpc, new AuthenticatedCaller(user.Subject, null, user.Method) { Roles = user.Roles }, http);
        try
        {
            return new Outcome<T>(await call(service, context), StatusCode.OK, null);
        }
        catch (RpcException e)
        {
            return new Outcome<T>(default, e.StatusCode, e.Status.Detail);
        }
        catch (BrokerException e)
        {
            var refusal = RpcErrors.From(e);
            return new Outcome<T>(default, refusal.StatusCode, refusal.Status.Detail);
        }
        catch (StoreUnavailableException e)
        {
            return new Outcome<T>(default, StatusCode.Unavailable, $"The lease store is unavailable ({e.Message}); retry shortly.");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var id = Guid.NewGuid().ToString("N")[..12];
            LogInternalError(logger, e, rpc, id);
            return new Outcome<T>(default, StatusCode.Internal, $"The broker failed to handle the action (error id {id}; the broker log has the details).");
        }
    }

    [LoggerMessage(EventId = 180, Level = LogLevel.Error, Message = "Console action {Rpc} failed inside the broker (error id {ErrorId})")]
    private static partial void LogInternalError(ILogger logger, Exception exception, string rpc, string errorId);
}
