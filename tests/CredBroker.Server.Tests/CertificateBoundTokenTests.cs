using System.Security.Cryptography;
using CredBroker.Core.Agents;
using CredBroker.Core.Broker;
using CredBroker.Core.Policy;
using CredBroker.Core.Tokens;
using CredBroker.Redis;
using CredBroker.Testing;
using CredBroker.Testing.Grpc;

namespace CredBroker.Server.Tests;

/// <summary>
/// RFC 8705 at the broker (Core's TaskBroker on the Redis store): a caller that used mTLS gets tokens
/// bound to its certificate from every minting call, and a bound token cannot be delegated.
/// (The host fills <see cref="CallerIdentity.CertificateThumbprint"/> from the TLS connection.)
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CertificateBoundTokenTests
{
    private const string Issuer = "https://broker.test";

    private RedisServer _redis = null!;
    private RedisLeaseStore _store = null!;
    private SigningKey _key = null!;
    private TestCertificates _pki = null!;
    private TaskBroker _broker = null!;

    [OneTimeSetUp]
    public void Start()
    {
        _redis = RedisServer.Start();
        _store = RedisLeaseStore.Connect(_redis.ConnectionString);
        _key = SigningKey.Generate();
        _pki = TestCertificates.Create();
        var keys = new StaticSigningKeys([_key]);
        var time = TimeProvider.System;
        var agents = new PolicyHolder(() => CredBroker.Core.Policy.File.PolicyFile.Parse("""
            agents:
              - id: triage-agent
                owner: support-team@example.com
                purpose: triage
                audiences: [tickets-api]
                allowed_scopes: [tickets:read]
              - id: summarizer-agent
                owner: support-team@example.com
                purpose: summarise
                audiences: [tickets-api]
                allowed_scopes: [tickets:read]
            """, "test agents"), time);
        var audit = new CredBroker.Core.Audit.AuditService(new CredBroker.Core.Audit.InMemory.InMemoryAuditLog(new CredBroker.Core.Audit.HmacAuditSigner(new byte[32])));
        _broker = new TaskBroker(agents, agents, _store, new TokenMinter(keys, Issuer, time), new TokenReader(keys, Issuer, time), time, audit);
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _store.Dispose();
        _redis.Dispose();
        _key.Dispose();
        _pki.Dispose();
    }

    private static BeginTaskCommand Begin(string subjectToken = "") =>
        new("task-" + Guid.NewGuid().ToString("N"), "", ["tickets:read"], "", null, subjectToken, new Dictionary<string, string>());

    private TokenClaims Read(string token) => new TokenReader(new StaticSigningKeys([_key]), Issuer, TimeProvider.System).Read(token)!;

    [Test]
    public async Task MtlsCaller_EveryMintedTokenIsBoundToItsCertificate()
    {
        var thumbprint = System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(_pki.Client.RawData));
        var caller = new CallerIdentity("triage-agent", "mtls", thumbprint);

        var begun = await _broker.BeginTaskAsync(caller, Begin(), default);
        var issued = await _broker.IssueTokenAsync(caller, begun.Lease.LeaseId, [], "", default);
        var renewed = await _broker.RenewLeaseAsync(caller, begun.Lease.LeaseId, null, default);

        Assert.That(new[] { begun.Token!, issued.Token, renewed.Token }.Select(t => Read(t.AccessToken).CertificateThumbprint), Is.All.EqualTo(thumbprint));
        var bearer = await _broker.IssueTokenAsync(new CallerIdentity("triage-agent", "jwt"), begun.Lease.LeaseId, [], "", default);
        Assert.That(Read(bearer.Token.AccessToken).CertificateThumbprint, Is.Null, "a caller without a certificate gets an unbound token");
    }

    [Test]
    public async Task BoundParentToken_CannotBeDelegated()
    {
        var parent = await _broker.BeginTaskAsync(
            new CallerIdentity("triage-agent", "mtls", System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(_pki.Client.RawData))), Begin(), default);

        var error = Assert.ThrowsAsync<BrokerException>(() =>
            _broker.BeginTaskAsync(new CallerIdentity("summarizer-agent", "jwt"), Begin(parent.Token!.AccessToken), default))!;

        Assert.That(error.Kind, Is.EqualTo(BrokerErrorKind.PermissionDenied));
        Assert.That(error.RuleIds, Is.EqualTo(new[] { "delegation.parent_bound" }));

        var unbound = await _broker.BeginTaskAsync(new CallerIdentity("triage-agent", "jwt"), Begin(), default);
        var delegation = await _broker.IssueTokenAsync(new CallerIdentity("triage-agent", "jwt"), unbound.Lease.LeaseId, [], Issuer, default);
        var child = await _broker.BeginTaskAsync(new CallerIdentity("summarizer-agent", "jwt"), Begin(delegation.Token.AccessToken), default);
        Assert.That(child.Lease.ParentLeaseIds, Is.EqualTo(new[] { unbound.Lease.LeaseId }), "the same delegation without a binding works");
    }
}
