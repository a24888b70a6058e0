namespace CredBroker.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted, after decompression. Larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = 64 * 1024;

    /// <summary>Largest response message the server will send. Larger → RESOURCE_EXHAUSTED.</summary>
    public int MaxSendMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Upper bound applied to a client's `grpc-timeout` on unary calls (null = none).</summary>
    public TimeSpan? MaxUnaryDeadline { get; set; } = TimeSpan.FromMinutes(1);
}
