namespace CredBroker.Core.Broker;

/// <summary>Why the broker refused a request. Hosts map these to their protocol's status codes.</summary>
public enum BrokerErrorKind
{
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
}

/// <summary>A refusal with a message that tells the caller what to fix, and the policy rules that decided it.</summary>
public sealed class BrokerException : Exception
{
    public BrokerException(BrokerErrorKind kind, string message, IReadOnlyList<string>? ruleIds = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        RuleIds = ruleIds ?? [];
    }

    public BrokerErrorKind Kind { get; }

    public IReadOnlyList<string> RuleIds { get; }

    /// <summary>A stable machine-readable reason (the gRPC ErrorInfo reason) when the kind alone does not say which check failed.</summary>
    public string? Reason { get; init; }

    /// <summary>For quota and rate refusals: when a retry can succeed.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>Thrown by store adapters when the backing store cannot be reached; the broker fails closed.</summary>
public sealed class StoreUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);
