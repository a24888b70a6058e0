using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Auth;

/// <summary>
/// The operator listener: a client certificate granted operator roles (by SPIFFE id), else an OIDC
/// credential from an operator issuer whose subject or groups are granted roles. Nobody else —
/// agents included — gets in.
/// </summary>
public sealed class OperatorAuthenticator(WorkloadJwtAuthenticator? jwt, OperatorDirectory operators) : ICallerAuthenticator
{
    public async Task<AuthenticatedCaller> AuthenticateAsync(ServerCallContext context)
    {
        if (context.ClientCertificate() is { } certificate && ClientCertificates.SpiffeId(certificate) is { } spiffeId
            && operators.RolesFor(null, null, [], spiffeId) is { Count: > 0 } certificateRoles)
        {
            return new AuthenticatedCaller(spiffeId, null, "mtls") { Roles = certificateRoles };
        }

        if (jwt is null)
        {
            throw WorkloadJwtAuthenticator.Unauthenticated(
                "No operator credential is accepted: configure CredBroker:Operators:Issuers, or grant a client certificate's SPIFFE id operator roles.");
        }

        var credential = await jwt.VerifyAsync(context, operators.GroupClaim);
        var roles = operators.RolesFor(credential.Issuer, credential.Subject, credential.Groups, null);
        return roles.Count > 0
            ? new AuthenticatedCaller(credential.Subject, null, "jwt:" + credential.Issuer) { Roles = roles }
            : throw WorkloadJwtAuthenticator.Unauthenticated($"'{JwtIssuerTrust.Clip(credential.Subject)}' is not an operator on this listener.");
    }
}
