namespace CredBroker.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted, after decompression. Larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 64 * 1024;

    /// <summary>Largest response message the server will send. Larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Deadline of a unary call: a client's `grpc-timeout` is capped to it, and it applies when the
    /// header is absent or malformed (null = no server-side deadline). Streaming calls are not capped.
    /// </summary>
    public TimeSpan? MaxUnaryDeadline { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Gzip every response to clients that list gzip in `grpc-accept-encoding`. When false, responses
    /// are compressed only for clients that compressed their request.
    /// </summary>
    public bool CompressResponses { get; set; }
}
