using CredBroker.Core.Leases;
using CredBroker.Core.Policy;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

/// <summary>Who is calling, as proven by the host's authentication (never taken from the request body).</summary>
/// <param name="CertificateThumbprint">
/// With mTLS: the base64url SHA-256 of the DER client certificate; minted tokens are then bound to it (RFC 8705 <c>cnf</c>).
/// </param>
/// <param name="VerifiedClaims">
/// String claims of the verified workload credential (empty for mTLS and dev secrets): the sources of the
/// policy's <c>verified_context</c> labels.
/// </param>
public sealed record CallerIdentity(string AgentId, string AuthenticationMethod, string? CertificateThumbprint = null, IReadOnlyDictionary<string, string>? VerifiedClaims = null)
{
    /// <summary>
    /// The RFC 7638 thumbprint of the key of the DPoP proof (RFC 9449) the host verified on this call
    /// (method, URI, window, replay): tokens minted for it carry <c>cnf.jkt</c>; null without a proof.
    /// </summary>
    public string? DpopKeyThumbprint { get; init; }

    /// <summary>True when tokens minted for this caller are sender-constrained (mTLS certificate or DPoP key).</summary>
    public bool IsSenderConstrained => CertificateThumbprint is not null || DpopKeyThumbprint is not null;

    public IReadOnlyDictionary<string, string> Claims => VerifiedClaims ?? EmptyClaims;

    private static readonly IReadOnlyDictionary<string, string> EmptyClaims = new Dictionary<string, string>();
}

public sealed record BeginTaskCommand(
    string TaskId, string Purpose, IReadOnlyList<string> Scopes, string Audience, TimeSpan? Ttl,
    string SubjectToken, IReadOnlyDictionary<string, string> Context);

/// <summary>
/// BeginTask's result: the lease, its first token (null while the lease waits for approval), and the
/// policy decision that opened it (rule ids, narrowing) for the caller and the audit trail.
/// </summary>
public sealed record TaskStart(Lease Lease, MintedToken? Token, Decision Decision);

/// <summary>A lease and a token minted under it.</summary>
public sealed record TaskGrant(Lease Lease, MintedToken Token);

public sealed record IntrospectionResult(bool Active, TokenClaims? Claims)
{
    public static readonly IntrospectionResult Inactive = new(false, null);
}
