namespace CredBroker.Grpc;

/// <summary>
/// A call that ended with a non-OK status. Thrown by handlers to choose the status the client
/// sees, and by <see cref="GrpcClient"/> when a call fails.
/// </summary>
public sealed class RpcException : Exception
{
    public RpcException(StatusCode statusCode, string detail, Exception? innerException = null)
        : base($"Status(StatusCode=\"{statusCode}\", Detail=\"{detail}\")", innerException)
    {
        StatusCode = statusCode;
        Detail = detail;
    }

    public StatusCode StatusCode { get; }

    /// <summary>The human-readable status message (`grpc-message`).</summary>
    public string Detail { get; }
}
