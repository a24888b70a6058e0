namespace CredBroker.Validation;

/// <summary>The typed claims of a token that passed every check.</summary>
public sealed record ValidatedToken
{
    /// <summary><c>iss</c>.</summary>
    public required string Issuer { get; init; }

    /// <summary><c>sub</c>: the agent id, or the user the agent acts for.</summary>
    public required string Subject { get; init; }

    /// <summary><c>act.sub</c>: the acting agent, when the token carries an <c>act</c> claim.</summary>
    public string? ActorSubject { get; init; }

    /// <summary><c>aud</c>.</summary>
    public required string Audience { get; init; }

    /// <summary><c>client_id</c>.</summary>
    public required string ClientId { get; init; }

    /// <summary>The space-separated <c>scope</c> claim as a set.</summary>
    public required IReadOnlySet<string> Scopes { get; init; }

    /// <summary><c>jti</c>.</summary>
    public required string TokenId { get; init; }

    /// <summary><c>iat</c>.</summary>
    public required DateTimeOffset IssuedAt { get; init; }

    /// <summary><c>nbf</c>.</summary>
    public required DateTimeOffset NotBefore { get; init; }

    /// <summary><c>exp</c>.</summary>
    public required DateTimeOffset ExpiresAt { get; init; }

    /// <summary><c>lease_id</c>: the task lease the token belongs to (the revocation handle).</summary>
    public required string LeaseId { get; init; }

    /// <summary><c>task_id</c>, when present.</summary>
    public string? TaskId { get; init; }

    /// <summary><c>owner</c>: the agent's accountable owner, when present.</summary>
    public string? Owner { get; init; }

    /// <summary><c>cnf.x5t#S256</c>: the certificate thumbprint the token is bound to, when present.</summary>
    public string? CertificateThumbprint { get; init; }

    /// <summary>The agent revocation applies to: <see cref="ActorSubject"/>, or <see cref="ClientId"/> without <c>act</c>.</summary>
    public string AgentId => ActorSubject ?? ClientId;
}
