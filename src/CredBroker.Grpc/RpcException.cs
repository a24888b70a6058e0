using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Grpc;

/// <summary>
/// A call that ended with a non-OK status. Thrown by handlers to choose the status the client
/// sees, and by <see cref="GrpcClient"/> when a call fails. <see cref="Details"/> travel as a
/// google.rpc.Status in the <c>grpc-status-details-bin</c> trailer.
/// </summary>
public sealed class RpcException : Exception
{
    public RpcException(StatusCode statusCode, string detail, Exception? innerException = null)
        : this(statusCode, detail, [], innerException)
    {
    }

    public RpcException(StatusCode statusCode, string detail, IEnumerable<IMessage> details, Exception? innerException = null)
        : base($"Status(StatusCode=\"{statusCode}\", Detail=\"{detail}\")", innerException)
    {
        StatusCode = statusCode;
        Detail = detail;
        Details = details.Select(d => d as Any ?? Any.Pack(d)).ToList();
    }

    public StatusCode StatusCode { get; }

    /// <summary>The human-readable status message (<c>grpc-message</c>).</summary>
    public string Detail { get; }

    /// <summary>Machine-readable error details (e.g. google.rpc.ErrorInfo), packed as Any.</summary>
    public IReadOnlyList<Any> Details { get; }

    /// <summary>Trailing metadata the server sent with the status (client side only).</summary>
    public Metadata Trailers { get; init; } = new();

    /// <summary>The first detail of type <typeparamref name="T"/>, or null.</summary>
    public T? GetDetail<T>()
        where T : class, IMessage<T>, new()
    {
        var descriptor = new T().Descriptor;
        return Details.FirstOrDefault(d => d.Is(descriptor))?.Unpack<T>();
    }

    /// <summary>The <c>grpc-status-details-bin</c> value, or null when there are no details.</summary>
    internal Google.Rpc.Status? ToStatusProto()
    {
        if (Details.Count == 0)
        {
            return null;
        }

        var status = new Google.Rpc.Status { Code = (int)StatusCode, Message = Detail };
        status.Details.AddRange(Details);
        return status;
    }
}
