namespace CredBroker.Grpc;

/// <summary>Per-call options for <see cref="GrpcClient"/>.</summary>
public sealed record CallOptions
{
    public static readonly CallOptions Default = new();

    /// <summary>Request metadata; reserved names are refused when it is built.</summary>
    public Metadata? Metadata { get; init; }

    /// <summary>Sent as `grpc-timeout`; the call is cancelled locally when it passes.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Compress the request message with gzip.</summary>
    public bool CompressRequest { get; init; }

    /// <summary>
    /// The call may be repeated safely: an UNAVAILABLE answer (server unreachable, connection lost
    /// before any response) is retried with backoff per the client's <see cref="RetryPolicy"/>.
    /// </summary>
    public bool Idempotent { get; init; }

    public CancellationToken CancellationToken { get; init; }
}

/// <summary>Exponential backoff with full jitter for idempotent calls that met UNAVAILABLE.</summary>
public sealed record RetryPolicy
{
    public static readonly RetryPolicy Default = new();

    /// <summary>Attempts in all, the first included (1 = never retry).</summary>
    public int MaxAttempts { get; init; } = 4;

    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The delay before attempt <paramref name="attempt"/> (2, 3, …): random in [0, min(max, initial·2^(attempt-2))].</summary>
    public TimeSpan Backoff(int attempt)
    {
        var cap = Math.Min(MaxBackoff.TotalMilliseconds, InitialBackoff.TotalMilliseconds * Math.Pow(2, attempt - 2));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * cap);
    }
}
