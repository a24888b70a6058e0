using System.Security.Cryptography;
using System.Text.Json.Nodes;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

public sealed class AccessTokenValidatorTests
{
    private TestTokens _tokens = null!;

    [SetUp]
    public void SetUp() => _tokens = new TestTokens();

    [TearDown]
    public void TearDown() => _tokens.Dispose();

    [Test]
    public void GenuineMintedToken_Validates_ClaimsRoundTrip()
    {
        var minted = _tokens.Mint();

        var result = _tokens.Validator().Validate(minted.AccessToken, _tokens.Now);

        Assert.That(result.IsValid, Is.True, result.ToString());
        var token = result.Token!;
        Assert.Multiple(() =>
        {
            Assert.That(result.Error, Is.Null);
            Assert.That(token.Issuer, Is.EqualTo(TestTokens.Issuer));
            Assert.That(token.Subject, Is.EqualTo(TestTokens.AgentId));
            Assert.That(token.ActorSubject, Is.EqualTo(TestTokens.AgentId));
            Assert.That(token.Audience, Is.EqualTo(TestTokens.Audience));
            Assert.That(token.ClientId, Is.EqualTo(TestTokens.AgentId));
            Assert.That(token.AgentId, Is.EqualTo(TestTokens.AgentId));
            Assert.That(token.Scopes, Is.EquivalentTo(new[] { "demo:read", "demo:write" }));
            Assert.That(token.TokenId, Is.EqualTo(minted.TokenId));
            Assert.That(token.IssuedAt, Is.EqualTo(minted.IssuedAt));
            Assert.That(token.NotBefore, Is.EqualTo(minted.IssuedAt));
            Assert.That(token.ExpiresAt, Is.EqualTo(minted.ExpiresAt));
            Assert.That(token.LeaseId, Is.EqualTo("lease-1"));
            Assert.That(token.TaskId, Is.EqualTo("task-7"));
            Assert.That(token.Owner, Is.EqualTo("dev@example.com"));
            Assert.That(token.CertificateThumbprint, Is.Null);
        });
    }

    [Test]
    public async Task GenuineMintedToken_ValidatesAsync()
    {
        var result = await _tokens.Validator().ValidateAsync(_tokens.Mint().AccessToken, _tokens.Now);

        Assert.That(result.IsValid, Is.True, result.ToString());
    }

    [Test]
    public void NotBefore_InTheFutureWithinSkew_Accepted()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        var token = _tokens.Sign(c => { c["iat"] = now + 60; c["nbf"] = now + 60; c["exp"] = now + 600; });

        Assert.That(_tokens.Validator().Validate(token, _tokens.Now).IsValid, Is.True);
    }

    [Test]
    public void Expired_WithinSkew_Accepted_ThenRejectedPastIt()
    {
        var token = _tokens.Mint();
        var validator = _tokens.Validator();

        Assert.Multiple(() =>
        {
            Assert.That(validator.Validate(token.AccessToken, token.ExpiresAt.AddSeconds(59)).IsValid, Is.True);
            Assert.That(validator.Validate(token.AccessToken, token.ExpiresAt.AddSeconds(60)).Error, Is.EqualTo(TokenErrors.Expired));
        });
    }

    [Test]
    public void Lifetime_ExactlyTheMaximum_Accepted()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        Assert.That(_tokens.Validator().Validate(_tokens.Sign(c => c["exp"] = now + 3600), _tokens.Now).IsValid, Is.True);
    }

    [Test]
    public void CertificateBound_MatchingThumbprint_Accepted_AndExposed()
    {
        var thumbprint = TestTokens.B64(SHA256.HashData("client certificate DER"u8));
        var token = _tokens.Sign(c => c["cnf"] = new JsonObject { ["x5t#S256"] = thumbprint });

        var result = _tokens.Validator().Validate(token, _tokens.Now, thumbprint);

        Assert.That(result.Token?.CertificateThumbprint, Is.EqualTo(thumbprint));
    }

    [Test]
    public void UnknownClaims_AreIgnored()
    {
        var token = _tokens.Sign(c => { c["extra"] = new JsonObject { ["nested"] = 1 }; c["roles"] = new JsonArray("a"); });
        Assert.That(_tokens.Validator().Validate(token, _tokens.Now).IsValid, Is.True);
    }

    [Test]
    public void DelegationChain_ActorIsTheOutermostAct()
    {
        var token = _tokens.Sign(c =>
        {
            c["sub"] = "user@example.com";
            c["act"] = new JsonObject { ["sub"] = "dev-agent", ["act"] = new JsonObject { ["sub"] = "parent-agent" } };
            c["parent_lease_ids"] = new JsonArray("parent-lease"); // one parent lease per nested actor
        });

        var result = _tokens.Validator().Validate(token, _tokens.Now);

        Assert.Multiple(() =>
        {
            Assert.That(result.Token?.Subject, Is.EqualTo("user@example.com"));
            Assert.That(result.Token?.ActorSubject, Is.EqualTo("dev-agent"));
        });
    }

    [Test]
    public void Options_RejectSkewOverFiveMinutes_AndEmptyIssuer()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new TokenValidationOptions
        {
            Issuer = TestTokens.Issuer, Audience = TestTokens.Audience, MaxClockSkew = TimeSpan.FromMinutes(5.5),
        });
        Assert.Throws<ArgumentException>(() => _ = new TokenValidationOptions { Issuer = "", Audience = TestTokens.Audience });
    }
}
