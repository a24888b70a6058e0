namespace CredBroker.Core.Delegation;

/// <summary>
/// Validates a user's token presented as <c>subject_token</c> (RFC 8693) against the trusted
/// user-token issuers: signature, <c>iss</c>, <c>aud</c> (the broker), <c>exp</c>/<c>nbf</c> with
/// bounded skew. Implemented by the host (it knows JWKS and configuration); Core only sees the result.
/// </summary>
public interface ISubjectTokenValidator
{
    /// <summary>The user and what they delegated; throws <see cref="SubjectTokenRejectedException"/> saying why not.</summary>
    Task<UserDelegation> ValidateAsync(string subjectToken, CancellationToken cancellationToken);
}

/// <summary>A validated user token: who the user is and which scopes they delegated to the agent.</summary>
public sealed record UserDelegation(string Issuer, string Subject, IReadOnlySet<string> Scopes, DateTimeOffset ExpiresAt);

/// <summary>The subject token is not acceptable; the message tells the caller what is wrong with it (never the token itself).</summary>
public sealed class SubjectTokenRejectedException(string message, string ruleId = SubjectTokenRejectedException.InvalidRule) : Exception(message)
{
    public const string InvalidRule = "delegation.subject_token";

    public string RuleId { get; } = ruleId;
}

/// <summary>The validator of a broker with no trusted user-token issuer: every user token is refused.</summary>
public sealed class NoUserTokenIssuers : ISubjectTokenValidator
{
    public static NoUserTokenIssuers Instance { get; } = new();

    public Task<UserDelegation> ValidateAsync(string subjectToken, CancellationToken cancellationToken) =>
        throw new SubjectTokenRejectedException(
            "subject_token was given, but delegation on behalf of a user is not enabled on this broker (no trusted user-token issuer); omit it.",
            "delegation.disabled");
}
