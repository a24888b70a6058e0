using System.Net.Http;
using CredBroker.Client;
using Grpc.Core;

namespace CredBroker.Cli;

/// <summary>What the process exit code means (docs/operations.md, "CLI reference"). Stable: scripts depend on them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int NotFound = 3;
    public const int Unauthenticated = 4;
    public const int PermissionDenied = 5;
    public const int Unavailable = 6;
    public const int Conflict = 7;
    public const int AuditBroken = 8;

    /// <summary>The exit code and a one-line explanation for a failed call.</summary>
    public static (int Code, string Message) For(Exception e, Uri server) => e switch
    {
        // No HTTP/2 session at all (refused, TLS mismatch, handshake failure): Grpc.Net.Client reports
        // UNAVAILABLE, or INTERNAL when the server closes before the HTTP/2 handshake.
        RpcException { StatusCode: StatusCode.Unavailable or StatusCode.Internal } rpc when IsTransportFailure(rpc.Status.DebugException) =>
            (Unavailable, $"cannot reach the broker's operator listener at {server} ({Innermost(rpc.Status.DebugException ?? rpc)}); is it running, and is --server right?"),
        RpcException rpc => rpc.StatusCode switch
        {
            StatusCode.InvalidArgument or StatusCode.OutOfRange => (Usage, "invalid request: " + rpc.Detail),
            StatusCode.NotFound => (NotFound, rpc.Detail),
            StatusCode.Unauthenticated => (Unauthenticated, "not authenticated as an operator: " + rpc.Detail + " (check --token / CREDBROKER_OPERATOR_TOKEN)"),
            StatusCode.PermissionDenied => (PermissionDenied, "permission denied (this credential lacks the operator role for this action): " + rpc.Detail),
            StatusCode.Unavailable or StatusCode.DeadlineExceeded => (Unavailable, $"the broker is unavailable ({rpc.StatusCode}): {rpc.Detail}"),
            StatusCode.FailedPrecondition or StatusCode.AlreadyExists or StatusCode.Aborted => (Conflict, rpc.Detail),
            StatusCode.Unimplemented => (Failure, $"this broker does not implement that call ({rpc.Detail}); is it an older version?"),
            _ => (Failure, $"{rpc.StatusCode}: {rpc.Detail}"),
        },
        HttpRequestException or IOException => (Unavailable, $"cannot reach the broker's operator listener at {server} ({e.Message}); is it running, and is --server right?"),
        TaskCanceledException or OperationCanceledException => (Unavailable, "the call timed out or was cancelled."),
        _ => (Failure, e.GetType().Name + ": " + e.Message),
    };

    private static bool IsTransportFailure(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message;
    }
}
