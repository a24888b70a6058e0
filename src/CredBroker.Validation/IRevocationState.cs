namespace CredBroker.Validation;

/// <summary>What the validator consults last: whether a lease was revoked or an agent quarantined.</summary>
public interface IRevocationState
{
    /// <summary>True when tokens of <paramref name="leaseId"/>, or of <paramref name="agentId"/> issued at <paramref name="issuedAt"/>, are revoked.</summary>
    /// <param name="leaseId">The token's <c>lease_id</c>.</param>
    /// <param name="agentId">The token's <c>act.sub</c>, or its <c>client_id</c> without <c>act</c>.</param>
    /// <param name="issuedAt">The token's <c>iat</c>.</param>
    bool IsRevoked(string leaseId, string agentId, DateTimeOffset issuedAt);

    /// <summary>
    /// False when the state cannot be trusted (e.g. the revocation feed has been down too long and
    /// the validator fails closed): every token is then refused with <see cref="TokenErrors.RevocationUnavailable"/>.
    /// </summary>
    bool IsAvailable => true;

    /// <summary>
    /// False while the state has not caught up with its source (e.g. before the revocation feed's
    /// first heartbeat): every token is then refused with <see cref="TokenErrors.RevocationsNotSynced"/>.
    /// </summary>
    bool IsSynced => true;
}
