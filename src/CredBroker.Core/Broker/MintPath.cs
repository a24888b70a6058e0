using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

/// <summary>
/// The one way an access token leaves the broker (BeginTask, IssueToken, WatchApproval): minted
/// sender-bound to the caller (<c>cnf.x5t#S256</c> from its mTLS certificate, when it used one) and
/// recorded as <c>token.minted</c> in the audit chain before it is returned. A failed append means
/// no token (the caller gets UNAVAILABLE). RenewLease mints here too and records <c>lease.renewed</c>.
/// </summary>
internal sealed class MintPath(TokenMinter minter, IAuditEvents audit, TimeProvider time)
{
    public async Task<MintedToken> MintAsync(
        CallerIdentity caller, Lease lease, AgentDefinition agent, IReadOnlyList<string> scopes, string audience,
        IReadOnlyList<string> requested, IReadOnlyList<string> ruleIds, string operation, CancellationToken cancellationToken)
    {
        var token = minter.Mint(lease, agent, scopes, audience, caller.CertificateThumbprint);
        await audit.RaiseAsync(AuditEvent.ForLease(AuditEventType.TokenMinted, lease, time.GetUtcNow()) with
        {
            Caller = TaskBroker.Who(caller),
            Audience = audience,
            ScopesRequested = requested,
            ScopesGranted = token.Scopes,
            RuleIds = ruleIds,
            Details = TaskBroker.TokenDetails(token, operation),
        }, cancellationToken);
        return token;
    }

    /// <summary>A renewal's token: bound like every other, recorded with the new deadline as <c>lease.renewed</c>.</summary>
    public async Task<MintedToken> RenewAsync(CallerIdentity caller, Lease lease, AgentDefinition agent, Func<MintedToken, AuditEvent> renewed, CancellationToken cancellationToken)
    {
        var token = minter.Mint(lease, agent, lease.Scopes, lease.Audience, caller.CertificateThumbprint);
        await audit.RaiseAsync(renewed(token), cancellationToken);
        return token;
    }
}
