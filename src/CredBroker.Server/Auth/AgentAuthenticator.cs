using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Auth;

/// <summary>
/// The agent listener: a client certificate whose SPIFFE id maps to an agent (mTLS), else a JWT
/// workload credential. Operator identities are refused here. When the connection carries a
/// client certificate its thumbprint is kept, so minted tokens are bound to it (RFC 8705 cnf).
/// </summary>
/// <param name="policyIdentities">
/// The policy file's <c>identities</c> ((source, subject) → agent id; the source is the credential's issuer, or
/// <c>mtls</c> for a client certificate), consulted after the configured mappings, which are bound to their issuer.
/// </param>
public sealed class AgentAuthenticator(
    WorkloadJwtAuthenticator? jwt, IReadOnlyList<SubjectPattern> certificates, OperatorDirectory operators, Func<string, string, string?>? policyIdentities = null) : ICallerAuthenticator
{
    public async Task<AuthenticatedCaller> AuthenticateAsync(ServerCallContext context)
    {
        var certificate = context.ClientCertificate();
        var thumbprint = certificate is null ? null : ClientCertificates.Thumbprint(certificate);
        var spiffeId = certificate is null ? null : ClientCertificates.SpiffeId(certificate);
        if (spiffeId is not null && operators.RolesFor(null, null, [], spiffeId).Count > 0)
        {
            throw WorkloadJwtAuthenticator.Unauthenticated("An operator certificate is not accepted on the agent listener; use the operator listener.");
        }

        if (spiffeId is not null && (SubjectPattern.Resolve(certificates, spiffeId) ?? policyIdentities?.Invoke(Core.Agents.IdentityEntry.ClientCertificateSource, spiffeId)) is { } mapped)
        {
            return new AuthenticatedCaller(spiffeId, mapped.Length > 0 ? mapped : null, "mtls") { CertificateThumbprint = thumbprint };
        }

        if (context.Header("authorization") is null && certificate is not null)
        {
            throw WorkloadJwtAuthenticator.Unauthenticated(spiffeId is null
                ? "The client certificate has no SPIFFE id (one spiffe:// URI SAN) and no bearer credential was sent."
                : $"The client certificate's SPIFFE id '{JwtIssuerTrust.Clip(spiffeId)}' maps to no workload (CredBroker:Identity:Certificates) and no bearer credential was sent.");
        }

        if (jwt is null)
        {
            throw WorkloadJwtAuthenticator.Unauthenticated("This listener trusts no credential issuer; present a mapped client certificate.");
        }

        var credential = await jwt.VerifyAsync(context, operators.GroupClaim);
        if (operators.RolesFor(credential.Issuer, credential.Subject, credential.Groups, null).Count > 0)
        {
            throw WorkloadJwtAuthenticator.Unauthenticated("An operator credential is not accepted on the agent listener; use the operator listener.");
        }

        var agent = SubjectPattern.Resolve(credential.Workloads, credential.Subject) ?? policyIdentities?.Invoke(credential.Issuer, credential.Subject);
        return new AuthenticatedCaller(credential.Subject, agent is { Length: > 0 } ? agent : null, "jwt:" + credential.Issuer)
        {
            CertificateThumbprint = thumbprint,
            Claims = credential.Claims,
        };
    }
}
