using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CredBroker.Core.Tokens;
using CredBroker.Testing.Grpc;

namespace CredBroker.Validation.Tests;

/// <summary>
/// Tokens the broker mints for delegation and certificate binding, checked offline: a sub-agent's
/// token dies with any lease (or agent) up its chain, and a bound token needs its certificate.
/// </summary>
public sealed class DelegatedTokenTests
{
    private TestTokens _tokens = null!;

    [SetUp]
    public void SetUp() => _tokens = new TestTokens();

    [TearDown]
    public void TearDown() => _tokens.Dispose();

    /// <summary>A grandchild token: lease-3 of helper-agent, delegated from lease-2 (summarizer-agent), from lease-1 (dev-agent).</summary>
    private MintedToken Grandchild() => _tokens.Minter.Mint(
        TestTokens.Lease("lease-3", TestTokens.Audience) with
        {
            AgentId = "helper-agent", Subject = "alice@users.test",
            Actors = ["summarizer-agent", TestTokens.AgentId], ParentLeaseIds = ["lease-2", "lease-1"],
        },
        TestTokens.Agent(), ["demo:read"], TestTokens.Audience);

    [Test]
    public void DelegatedToken_CarriesTheChain()
    {
        var result = _tokens.Validator().Validate(Grandchild().AccessToken, _tokens.Now);

        Assert.That(result.IsValid, Is.True, result.Error);
        Assert.That(result.Token!.Subject, Is.EqualTo("alice@users.test"));
        Assert.That(result.Token.ActorSubject, Is.EqualTo("helper-agent"));
        Assert.That(result.Token.DelegatedBy, Is.EqualTo(new[] { "summarizer-agent", TestTokens.AgentId }));
        Assert.That(result.Token.ParentLeaseIds, Is.EqualTo(new[] { "lease-2", "lease-1" }));
    }

    [TestCase("lease-3")]
    [TestCase("lease-2")]
    [TestCase("lease-1")]
    public void AnyRevokedLeaseInTheChain_RevokesTheToken(string revoked)
    {
        var denyList = new DenyList();
        var validator = _tokens.Validator(revocation: denyList);
        var token = Grandchild().AccessToken;
        denyList.RevokeLease("unrelated-lease", _tokens.Now.AddHours(1));
        Assert.That(validator.Validate(token, _tokens.Now).IsValid, Is.True);

        denyList.RevokeLease(revoked, _tokens.Now.AddHours(1));

        Assert.That(validator.Validate(token, _tokens.Now).Error, Is.EqualTo(TokenErrors.Revoked));
    }

    [Test]
    public void QuarantinedAncestorAgent_RevokesTheToken()
    {
        var denyList = new DenyList();
        var validator = _tokens.Validator(revocation: denyList);
        var token = Grandchild().AccessToken;

        denyList.QuarantineAgent(TestTokens.AgentId, _tokens.Now.AddSeconds(1));

        Assert.That(validator.Validate(token, _tokens.Now).Error, Is.EqualTo(TokenErrors.Revoked));
    }

    [TestCase("""{"sub":"helper-agent","act":{"sub":"summarizer-agent"}}""", """["lease-2","lease-1"]""")]
    [TestCase("""{"sub":"helper-agent"}""", """["lease-2"]""")]
    [TestCase("""{"sub":"helper-agent","act":{"sub":"summarizer-agent"}}""", null)]
    [TestCase("""{"sub":"helper-agent","act":{"sub":"summarizer-agent"}}""", """["lease-2",7]""")]
    [TestCase("""{"sub":"helper-agent","act":{"sub":"summarizer-agent"}}""", "\"lease-2\"")]
    [TestCase("""{"sub":"helper-agent","act":{"act":{"sub":"x"}}}""", """["lease-2"]""")]
    public void ChainThatDoesNotLineUp_IsRejected(string act, string? parents)
    {
        var token = _tokens.Sign(c =>
        {
            c["act"] = JsonNode.Parse(act);
            if (parents is not null)
            {
                c["parent_lease_ids"] = JsonNode.Parse(parents);
            }
        });

        Assert.That(_tokens.Validator().Validate(token, _tokens.Now).Error, Is.EqualTo(TokenErrors.Claims));
    }

    [Test]
    public void CertificateBoundToken_FromTheMinter_NeedsThatCertificate()
    {
        using var pki = TestCertificates.Create();
        var thumbprint = TestTokens.B64(SHA256.HashData(pki.Client.RawData));
        var token = _tokens.Minter.Mint(TestTokens.Lease("lease-1", TestTokens.Audience), TestTokens.Agent(), ["demo:read"], TestTokens.Audience, thumbprint);
        var validator = _tokens.Validator();

        Assert.Multiple(() =>
        {
            Assert.That(validator.Validate(token.AccessToken, _tokens.Now, thumbprint).IsValid, Is.True);
            Assert.That(validator.Validate(token.AccessToken, _tokens.Now, thumbprint).Token!.CertificateThumbprint, Is.EqualTo(thumbprint));
            Assert.That(validator.Validate(token.AccessToken, _tokens.Now).Error, Is.EqualTo(TokenErrors.Confirmation), "without the certificate");
            Assert.That(validator.Validate(token.AccessToken, _tokens.Now, TestTokens.B64(SHA256.HashData(pki.RogueClient.RawData))).Error,
                Is.EqualTo(TokenErrors.Confirmation), "with another certificate");
        });
    }
}
