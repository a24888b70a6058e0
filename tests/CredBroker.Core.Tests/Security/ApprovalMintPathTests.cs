using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tokens;
using CredBroker.Testing;

namespace CredBroker.Core.Tests.Security;

/// <summary>
/// Issue 15, item 4: the token in WatchApproval's approved view is minted on the same path as
/// BeginTask/IssueToken — bound to the watching caller's mTLS certificate (cnf) and audited first.
/// (The host fills <see cref="CallerIdentity.CertificateThumbprint"/> from the TLS connection.)
/// </summary>
[TestFixture]
public sealed class ApprovalMintPathTests
{
    private const string Issuer = "https://broker.test";

    [Test]
    public async Task ApprovedView_TokenIsBoundToTheWatchersCertificate_AndAudited()
    {
        var time = TimeProvider.System;
        using var key = SigningKey.Generate();
        var keys = new StaticSigningKeys([key]);
        var policy = new PolicyHolder(() => PolicyFile.Parse("""
            agents:
              - id: triage-agent
                owner: support-team@example.com
                purpose: triage
                audiences: [tickets-api]
                allowed_scopes: [tickets:read]
                approval_scopes: [tickets:export]
            """, "test"), time);
        var log = new InMemoryAuditLog(new HmacAuditSigner(new byte[32]));
        var audit = new AuditService(log);
        var store = new InMemoryLeaseStore();
        var minter = new TokenMinter(keys, Issuer, time);
        var broker = new TaskBroker(policy, policy, store, minter, new TokenReader(keys, Issuer, time), time, audit);
        var desk = new ApprovalDesk(policy, broker.Policy, store, minter, time, audit);
        var caller = new CallerIdentity("triage-agent", "mtls", "thumbprint-of-the-agent-certificate");

        var begun = await broker.BeginTaskAsync(caller, new BeginTaskCommand(
            "task-1", "", ["tickets:read", "tickets:export"], "", TimeSpan.FromMinutes(5), "", new Dictionary<string, string>()), default);
        Assert.That(begun.Token, Is.Null);
        await desk.ApproveAsync(begun.Lease.LeaseId, [], "alice", "ok", default);
        ApprovalView? approved = null;
        await foreach (var view in desk.WatchAsync(caller, begun.Lease.LeaseId, default))
        {
            approved = view;
        }

        Assert.That(approved!.State, Is.EqualTo(ApprovalState.Approved));
        var claims = new TokenReader(keys, Issuer, time).Read(approved.Token!.AccessToken)!;
        Assert.That(claims.CertificateThumbprint, Is.EqualTo("thumbprint-of-the-agent-certificate"), "bound like BeginTask's tokens");
        var minted = (await log.ReadAsync(null, 1000, default)).Select(r => r.TryEvent()!).Where(e => e.Type == AuditEventType.TokenMinted);
        Assert.That(minted.Select(e => e.Details.GetValueOrDefault("jti")), Does.Contain(approved.Token.TokenId), "audited as token.minted");
    }
}
