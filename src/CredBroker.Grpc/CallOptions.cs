namespace CredBroker.Grpc;

/// <summary>Per-call options for <see cref="GrpcClient"/>.</summary>
public sealed record CallOptions
{
    public static readonly CallOptions Default = new();

    /// <summary>Request metadata (ASCII values; names ending in -bin are base64-encoded by the caller).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Sent as `grpc-timeout`; the call is cancelled locally when it passes.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Compress the request message with gzip.</summary>
    public bool CompressRequest { get; init; }

    public CancellationToken CancellationToken { get; init; }
}
