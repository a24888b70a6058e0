using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Client;

/// <summary>
/// The broker's error details on <see cref="RpcException"/>: the <c>google.rpc.Status</c> it sends in
/// the <c>grpc-status-details-bin</c> trailer (read with Grpc.StatusProto), e.g. the policy rule ids
/// of a denial in <see cref="Google.Rpc.ErrorInfo"/> or the wait of a rate limit in <see cref="Google.Rpc.RetryInfo"/>.
/// </summary>
public static class RpcErrors
{
    extension(RpcException e)
    {
        /// <summary>The human-readable status message (<c>grpc-message</c>), i.e. <c>Status.Detail</c>.</summary>
        public string Detail => e.Status.Detail;

        /// <summary>The rich status from <c>grpc-status-details-bin</c>, or null when the broker sent none (or it does not parse).</summary>
        public Google.Rpc.Status? RichStatus => e.GetRpcStatus();

        /// <summary>The <c>google.rpc.ErrorInfo</c> detail (reason, domain, metadata such as <c>rules</c>), or null.</summary>
        public ErrorInfo? ErrorInfo => e.GetDetail<ErrorInfo>();

        /// <summary>The <c>google.rpc.RetryInfo</c> detail (how long to wait before retrying), or null.</summary>
        public RetryInfo? RetryInfo => e.GetDetail<RetryInfo>();

        /// <summary>The first detail of type <typeparamref name="T"/> in the rich status, or null.</summary>
        public T? GetDetail<T>()
            where T : class, IMessage<T>, new() =>
            e.GetRpcStatus()?.GetDetail<T>();
    }
}
