using CredBroker.Core.Broker;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using StatusCode = Grpc.Core.StatusCode;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Every refusal the broker sends: a gRPC status with a message that says what to fix, and a
/// google.rpc.Status in the <c>grpc-status-details-bin</c> trailer carrying an ErrorInfo (and a
/// RetryInfo when waiting helps), so clients can branch on a stable reason instead of the text.
/// </summary>
public static class RpcErrors
{
    /// <summary>The <c>domain</c> of every google.rpc.ErrorInfo the broker sends.</summary>
    public const string ErrorDomain = "credbroker.dev";

    /// <summary>A refusal with an ErrorInfo whose reason follows from <paramref name="code"/> unless given.</summary>
    public static RpcException Create(StatusCode code, string message, string? reason = null) =>
        ToException(code, message, new ErrorInfo { Reason = reason ?? ReasonFor(code), Domain = ErrorDomain });

    /// <summary>A broker refusal as the status the contract promises for its kind, with its rule ids and retry delay.</summary>
    public static RpcException From(BrokerException e)
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
        var info = new ErrorInfo { Reason = e.Reason ?? ReasonFor(code), Domain = ErrorDomain };
        if (e.RuleIds.Count > 0)
        {
            info.Metadata["rules"] = string.Join(",", e.RuleIds);
        }

        var message = e.RuleIds.Count > 0 && code == StatusCode.PermissionDenied
            ? $"{e.Message} [rules: {string.Join(", ", e.RuleIds)}]"
            : e.Message;
        return ToException(code, message, info, e.RetryAfter is { } retryAfter ? new RetryInfo { RetryDelay = Duration.FromTimeSpan(retryAfter) } : null);
    }

    /// <summary>The status with its google.rpc.Status details (ErrorInfo, then RetryInfo when waiting helps).</summary>
    private static RpcException ToException(StatusCode code, string message, ErrorInfo info, RetryInfo? retry = null)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = message, Details = { Any.Pack(info) } };
        if (retry is not null)
        {
            status.Details.Add(Any.Pack(retry));
        }

        return status.ToRpcException();
    }

    private static string ReasonFor(StatusCode code) => code switch
    {
        StatusCode.InvalidArgument => "INVALID_REQUEST",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        StatusCode.PermissionDenied => "POLICY_DENIED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "TASK_EXISTS",
        StatusCode.FailedPrecondition => "LEASE_NOT_OPEN",
        StatusCode.ResourceExhausted => "QUOTA_EXCEEDED",
        StatusCode.Unavailable => "STORE_UNAVAILABLE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
}
