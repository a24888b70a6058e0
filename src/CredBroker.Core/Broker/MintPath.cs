using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

/// <summary>
/// The one way an access token leaves the broker (BeginTask, IssueToken, WatchApproval): minted
/// sender-bound to the caller (<c>cnf.x5t#S256</c> from its mTLS certificate, <c>cnf.jkt</c> from its
/// DPoP key or the lease's, when it used them) and
/// recorded as <c>token.minted</c> in the audit chain before it is returned. A failed append means
/// no token (the caller gets UNAVAILABLE). RenewLease mints here too and records <c>lease.renewed</c>.
/// </summary>
internal sealed class MintPath(TokenMinter minter, IAuditEvents audit, TimeProvider time)
{
    public async Task<MintedToken> MintAsync(
        CallerIdentity caller, Lease lease, AgentDefinition agent, IReadOnlyList<string> scopes, string audience,
        IReadOnlyList<string> requested, IReadOnlyList<string> ruleIds, string operation, CancellationToken cancellationToken)
    {
        var token = minter.Mint(lease, agent, scopes, audience, caller.CertificateThumbprint, DpopKey(caller, lease));
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
        var token = minter.Mint(lease, agent, lease.Scopes, lease.Audience, caller.CertificateThumbprint, DpopKey(caller, lease));
        await audit.RaiseAsync(renewed(token), cancellationToken);
        return token;
    }

    /// <summary>
    /// The DPoP key a token is bound to: the lease's (the broker checked the caller's proof against it
    /// before minting; WatchApproval's token is bound to the key BeginTask proved), else the caller's proof's.
    /// </summary>
    private static string? DpopKey(CallerIdentity caller, Lease lease) => lease.DpopKeyThumbprint ?? caller.DpopKeyThumbprint;
}
