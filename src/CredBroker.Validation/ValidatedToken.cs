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

    /// <summary><c>cnf.jkt</c>: the RFC 7638 thumbprint of the DPoP key the token is bound to, when present.</summary>
    public string? KeyThumbprint { get; init; }

    /// <summary>
    /// The earlier actors of a delegation chain (<c>act.act.sub</c>, <c>act.act.act.sub</c>, …), nearest
    /// first; empty unless the token was delegated to a sub-agent.
    /// </summary>
    public IReadOnlyList<string> DelegatedBy { get; init; } = [];

    /// <summary>
    /// <c>parent_lease_ids</c>: the leases this token's lease was delegated from, nearest first (parallel
    /// to <see cref="DelegatedBy"/>). The token is revoked when any of them is.
    /// </summary>
    public IReadOnlyList<string> ParentLeaseIds { get; init; } = [];

    /// <summary>The agent revocation applies to: <see cref="ActorSubject"/>, or <see cref="ClientId"/> without <c>act</c>.</summary>
    public string AgentId => ActorSubject ?? ClientId;
}
