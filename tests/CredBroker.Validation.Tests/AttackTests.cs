using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Core.Tokens;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

/// <summary>The JWT attack suite: every token here must be rejected, for the stated reason.</summary>
public sealed class AttackTests
{
    private TestTokens _tokens = null!;
    private AccessTokenValidator _validator = null!;

    [SetUp]
    public void SetUp()
    {
        _tokens = new TestTokens();
        _validator = _tokens.Validator();
    }

    [TearDown]
    public void TearDown() => _tokens.Dispose();

    [Test]
    public void Control_CraftedTokenWithBrokerHeaderAndClaims_IsValid() =>
        Assert.That(Validate(_tokens.Sign()).IsValid, Is.True);

    [TestCase("none")]
    [TestCase("None")]
    [TestCase("NONE")]
    public void AlgNone_Unsigned_Rejected(string alg)
    {
        var token = TestTokens.B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"{alg}\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\"}}"))
            + "." + TestTokens.B64(Encoding.UTF8.GetBytes(_tokens.Payload())) + ".";
        AssertRejected(token, TokenErrors.Algorithm);
    }

    [Test]
    public void AlgNone_WithSignatureKept_Rejected() =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\"}}", _tokens.Payload()), TokenErrors.Algorithm);

    [Test]
    public void Hs256_SignedWithPublicKeyAsHmacSecret_Rejected()
    {
        var input = TestTokens.B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\"}}"))
            + "." + TestTokens.B64(Encoding.UTF8.GetBytes(_tokens.Payload()));
        foreach (var secret in new[] { Encoding.UTF8.GetBytes(TestTokens.JwksOf(_tokens.Key)), Concat(TestTokens.Unb64(_tokens.Key.X), TestTokens.Unb64(_tokens.Key.Y)) })
        {
            var token = input + "." + TestTokens.B64(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
            AssertRejected(token, TokenErrors.Algorithm);
        }
    }

    [Test]
    public void UnknownKid_SignedByAnotherKey_Rejected()
    {
        using var other = SigningKey.Generate();
        AssertRejected(_tokens.Sign(key: other), TokenErrors.UnknownKey);
    }

    [Test]
    public void KnownKid_SignedByAnotherKey_Rejected()
    {
        using var other = SigningKey.Generate();
        AssertRejected(_tokens.Sign(_tokens.Header(), _tokens.Payload(), other), TokenErrors.Signature);
    }

    [TestCase("../../x")]
    [TestCase("../../../../dev/null")]
    [TestCase("x\\\" OR \\\"1\\\"=\\\"1")]
    [TestCase("' OR '1'='1")]
    public void KidInjection_Rejected(string kidJson) =>
        AssertRejected(_tokens.Sign(_tokens.Header(kidJson), _tokens.Payload()), TokenErrors.UnknownKey);

    [Test]
    public void KidMissing_Rejected() =>
        AssertRejected(_tokens.Sign("{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", _tokens.Payload()), TokenErrors.KeyId);

    [TestCase("\"kid\":123")]
    [TestCase("\"kid\":\"\"")]
    public void KidNotANonEmptyString_Rejected(string kidMember) =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",{kidMember}}}", _tokens.Payload()), TokenErrors.KeyId);

    [TestCase("\"jku\":\"https://attacker.example/jwks.json\"")]
    [TestCase("\"x5u\":\"https://attacker.example/cert.pem\"")]
    [TestCase("\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}")]
    [TestCase("\"x5c\":[\"MIIB\"]")]
    [TestCase("\"crit\":[\"exp\"]")]
    [TestCase("\"cty\":\"JWT\"")]
    [TestCase("\"zip\":\"DEF\"")]
    [TestCase("\"b64\":false")]
    public void ExtraHeaderMember_Rejected(string member) =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\",{member}}}", _tokens.Payload()), TokenErrors.Header);

    [Test]
    public void EmbeddedJwkOfTheAttackersKey_Rejected()
    {
        using var attacker = SigningKey.Generate();
        var header = $"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{attacker.Kid}\",\"jwk\":{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{attacker.X}\",\"y\":\"{attacker.Y}\"}}}}";
        AssertRejected(_tokens.Sign(header, _tokens.Payload(), attacker), TokenErrors.Header);
    }

    [TestCase("\"typ\":\"JWT\",")]
    [TestCase("\"typ\":\"jwt\",")]
    [TestCase("\"typ\":\"AT+JWT\",")]
    [TestCase("\"typ\":\"application/jwt\",")]
    [TestCase("\"typ\":null,")]
    [TestCase("")]
    public void WrongOrMissingTyp_Rejected(string typMember) =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"ES256\",{typMember}\"kid\":\"{_tokens.Key.Kid}\"}}", _tokens.Payload()), TokenErrors.Type);

    [TestCase("ES384")]
    [TestCase("es256")]
    [TestCase("RS256")]
    [TestCase("PS256")]
    public void OtherAlg_Rejected(string alg) =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"{alg}\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\"}}", _tokens.Payload()), TokenErrors.Algorithm);

    [TestCase("https://broker.example/")]
    [TestCase("https://BROKER.example")]
    [TestCase("HTTPS://broker.example")]
    [TestCase("https://broker.example.attacker.example")]
    [TestCase("http://broker.example")]
    public void IssuerVariant_Rejected(string iss) =>
        AssertRejected(_tokens.Sign(c => c["iss"] = iss), TokenErrors.Issuer);

    [TestCase("Demo-api")]
    [TestCase("DEMO-API")]
    [TestCase("demo-api/")]
    [TestCase(" demo-api")]
    [TestCase("billing-api")]
    public void AudienceVariant_Rejected(string aud) =>
        AssertRejected(_tokens.Sign(c => c["aud"] = aud), TokenErrors.Audience);

    [Test]
    public void AudienceArray_WithOurAudienceAndAnother_Rejected() =>
        AssertRejected(_tokens.Sign(c => c["aud"] = new JsonArray("demo-api", "billing-api")), TokenErrors.Audience);

    [Test]
    public void AudienceArray_WithOnlyOurAudience_Rejected() =>
        AssertRejected(_tokens.Sign(c => c["aud"] = new JsonArray("demo-api")), TokenErrors.Audience);

    [Test]
    public void GenuineToken_ReplayedAtAnotherAudience_Rejected()
    {
        var token = _tokens.Mint(audience: "billing-api").AccessToken;
        Assert.That(_tokens.Validator(TestTokens.Options("billing-api")).Validate(token, _tokens.Now).IsValid, Is.True);
        AssertRejected(token, TokenErrors.Audience);
    }

    [TestCase("iss")]
    [TestCase("sub")]
    [TestCase("aud")]
    [TestCase("client_id")]
    [TestCase("scope")]
    [TestCase("jti")]
    [TestCase("iat")]
    [TestCase("nbf")]
    [TestCase("exp")]
    [TestCase("lease_id")]
    public void RequiredClaimMissing_Rejected(string claim) =>
        AssertRejected(_tokens.Sign(c => c.Remove(claim)), TokenErrors.Claims);

    [TestCase("exp", "\"1767270000\"")]
    [TestCase("exp", "1767270000.5")]
    [TestCase("iat", "null")]
    [TestCase("sub", "42")]
    [TestCase("lease_id", "\"\"")]
    [TestCase("act", "\"dev-agent\"")]
    [TestCase("act", "{}")]
    [TestCase("task_id", "7")]
    public void ClaimOfWrongType_Rejected(string claim, string json) =>
        AssertRejected(_tokens.Sign(c => c[claim] = JsonNode.Parse(json)), TokenErrors.Claims);

    [Test]
    public void Expired_BeyondSkew_Rejected()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        AssertRejected(_tokens.Sign(c => { c["iat"] = now - 600; c["nbf"] = now - 600; c["exp"] = now - 61; }), TokenErrors.Expired);
    }

    [Test]
    public void NotBefore_InTheFutureBeyondSkew_Rejected()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        AssertRejected(_tokens.Sign(c => c["nbf"] = now + 61), TokenErrors.NotYetValid);
    }

    [Test]
    public void IssuedAt_InTheFutureBeyondSkew_Rejected()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        AssertRejected(_tokens.Sign(c => { c["iat"] = now + 61; c["exp"] = now + 900; }), TokenErrors.IssuedInFuture);
    }

    [Test]
    public void Lifetime_BeyondMaxTokenLifetime_Rejected()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        AssertRejected(_tokens.Sign(c => c["exp"] = now + 3601), TokenErrors.Lifetime);
    }

    [Test]
    public void Lifetime_ExpiryNotAfterIssue_Rejected()
    {
        var now = _tokens.Now.ToUnixTimeSeconds();
        AssertRejected(_tokens.Sign(c => { c["iat"] = now + 30; c["exp"] = now + 30; }), TokenErrors.Lifetime);
    }

    [TestCase("")]
    [TestCase("   ")]
    [TestCase("*")]
    [TestCase("demo:read demo:*")]
    [TestCase("demo:read *:write")]
    public void Scope_EmptyOrWildcard_Rejected(string scope) =>
        AssertRejected(_tokens.Sign(c => c["scope"] = scope), TokenErrors.Scope);

    [Test]
    public void DuplicateClaim_Rejected()
    {
        var payload = _tokens.Payload().Replace("\"sub\":\"dev-agent\",", "\"sub\":\"dev-agent\",\"sub\":\"admin\",", StringComparison.Ordinal);
        AssertRejected(_tokens.Sign(_tokens.Header(), payload), TokenErrors.DuplicateMember);
    }

    [Test]
    public void DuplicateClaimInsideAct_Rejected()
    {
        var payload = _tokens.Payload().Replace("\"act\":{\"sub\":\"dev-agent\"}", "\"act\":{\"sub\":\"dev-agent\",\"sub\":\"root\"}", StringComparison.Ordinal);
        AssertRejected(_tokens.Sign(_tokens.Header(), payload), TokenErrors.DuplicateMember);
    }

    [Test]
    public void DuplicateHeaderMember_Rejected() =>
        AssertRejected(_tokens.Sign($"{{\"alg\":\"none\",\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{_tokens.Key.Kid}\"}}", _tokens.Payload()), TokenErrors.DuplicateMember);

    [Test]
    public void Oversized_Rejected()
    {
        var token = _tokens.Sign(c => c["padding"] = new string('a', 9000));
        AssertRejected(token, TokenErrors.Size);
        Assert.That(_tokens.Validator(new TokenValidationOptions { Issuer = TestTokens.Issuer, Audience = TestTokens.Audience, MaxTokenSize = 16 * 1024 })
            .Validate(token, _tokens.Now).IsValid, Is.True, "the same token under a larger limit: the size check is what rejected it");
    }

    [Test]
    public void FivePartJwe_Rejected()
    {
        var header = TestTokens.B64(Encoding.UTF8.GetBytes("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\",\"typ\":\"at+jwt\"}"));
        AssertRejected($"{header}.AAAA.AAAAAAAAAAAAAAAA.{TestTokens.B64(new byte[32])}.AAAAAAAAAAAAAAAAAAAAAA", TokenErrors.Malformed);
    }

    [TestCase("")]
    [TestCase("abc")]
    [TestCase("a.b")]
    [TestCase("..")]
    public void NotAJws_Rejected(string token) => AssertRejected(token, TokenErrors.Malformed);

    [Test]
    public void FourPartToken_Rejected() => AssertRejected(_tokens.Sign() + ".AAAA", TokenErrors.Malformed);

    [TestCase(0)]
    [TestCase(31)]
    [TestCase(63)]
    public void FlippedBitInSignature_Rejected(int index)
    {
        var parts = _tokens.Sign().Split('.');
        var signature = TestTokens.Unb64(parts[2]);
        signature[index] ^= 0x01;
        AssertRejected($"{parts[0]}.{parts[1]}.{TestTokens.B64(signature)}", TokenErrors.Signature);
    }

    [Test]
    public void FlippedBitInPayload_Rejected()
    {
        var parts = _tokens.Sign().Split('.');
        var payload = TestTokens.Unb64(parts[1]);
        var at = Encoding.ASCII.GetString(payload).IndexOf("demo:read", StringComparison.Ordinal);
        payload[at] ^= 0x20; // "demo:read" -> "Demo:read": still valid JSON, different claims
        AssertRejected($"{parts[0]}.{TestTokens.B64(payload)}.{parts[2]}", TokenErrors.Signature);
    }

    [Test]
    public void FlippedBitInHeader_Rejected()
    {
        var parts = _tokens.Sign().Split('.');
        var header = TestTokens.Unb64(parts[0]);
        header[0] ^= 0x01; // '{' -> 'z': no longer JSON
        AssertRejected($"{TestTokens.B64(header)}.{parts[1]}.{parts[2]}", TokenErrors.Malformed);
    }

    [Test]
    public void HeaderReencoded_SameMembersOtherOrder_SignatureNoLongerMatches()
    {
        var parts = _tokens.Sign().Split('.');
        var reordered = TestTokens.B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{_tokens.Key.Kid}\",\"typ\":\"at+jwt\",\"alg\":\"ES256\"}}"));
        AssertRejected($"{reordered}.{parts[1]}.{parts[2]}", TokenErrors.Signature);
    }

    [Test]
    public void SignatureTruncatedOrDer_Rejected()
    {
        var parts = _tokens.Sign().Split('.');
        var p1363 = TestTokens.Unb64(parts[2]);
        AssertRejected($"{parts[0]}.{parts[1]}.{TestTokens.B64(p1363.AsSpan(0, 63))}", TokenErrors.Signature);
        AssertRejected($"{parts[0]}.{parts[1]}.", TokenErrors.Signature);
    }

    [TestCase(0, "=")]
    [TestCase(1, "==")]
    [TestCase(2, "=")]
    public void Base64UrlWithPadding_Rejected(int part, string padding)
    {
        var parts = _tokens.Sign().Split('.');
        parts[part] += padding;
        AssertRejected(string.Join('.', parts), TokenErrors.Malformed);
    }

    [TestCase('+')]
    [TestCase('/')]
    [TestCase(' ')]
    [TestCase('\n')]
    [TestCase('\t')]
    public void Base64UrlWithForeignCharacter_Rejected(char c)
    {
        var parts = _tokens.Sign().Split('.');
        parts[1] = parts[1][..8] + c + parts[1][8..];
        AssertRejected(string.Join('.', parts), TokenErrors.Malformed);
    }

    [Test]
    public void Base64UrlStandardAlphabet_Rejected()
    {
        var token = _tokens.Sign();
        var standard = token.Replace('-', '+').Replace('_', '/');
        Assume.That(standard, Is.Not.EqualTo(token), "the token has '-' or '_' to translate");
        AssertRejected(standard, TokenErrors.Malformed);
    }

    [Test]
    public void Base64UrlNonCanonicalTrailingBits_Rejected()
    {
        var parts = _tokens.Sign().Split('.');
        // 64 bytes encode to 86 characters; the last carries 4 unused bits, which must be zero.
        var last = parts[2][^1];
        var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        parts[2] = parts[2][..^1] + alphabet[alphabet.IndexOf(last, StringComparison.Ordinal) | 1];
        AssertRejected(string.Join('.', parts), TokenErrors.Malformed);
    }

    [Test]
    public void RevokedLease_Rejected()
    {
        var denyList = new DenyList();
        var token = _tokens.Mint(leaseId: "lease-9");
        var validator = _tokens.Validator(revocation: denyList);
        Assert.That(validator.Validate(token.AccessToken, _tokens.Now).IsValid, Is.True);

        denyList.RevokeLease("lease-9", token.ExpiresAt);

        Assert.That(validator.Validate(token.AccessToken, _tokens.Now).Error, Is.EqualTo(TokenErrors.Revoked));
    }

    [Test]
    public void QuarantinedAgent_TokenIssuedBefore_Rejected_TokenIssuedAfter_Accepted()
    {
        var denyList = new DenyList();
        var validator = _tokens.Validator(revocation: denyList);
        var before = _tokens.Mint(leaseId: "lease-a").AccessToken;
        _tokens.Clock.Advance(TimeSpan.FromSeconds(10));

        denyList.QuarantineAgent(TestTokens.AgentId, _tokens.Now);
        _tokens.Clock.Advance(TimeSpan.FromSeconds(1));
        var after = _tokens.Mint(leaseId: "lease-b").AccessToken;

        Assert.Multiple(() =>
        {
            Assert.That(validator.Validate(before, _tokens.Now).Error, Is.EqualTo(TokenErrors.Revoked));
            Assert.That(validator.Validate(after, _tokens.Now).IsValid, Is.True);
        });
    }

    [Test]
    public void QuarantinedAgent_WithoutAct_UsesClientId()
    {
        var denyList = new DenyList();
        denyList.QuarantineAgent("other-agent", _tokens.Now.AddSeconds(1));
        var token = _tokens.Sign(c => { c.Remove("act"); c["client_id"] = "other-agent"; });

        Assert.That(_tokens.Validator(revocation: denyList).Validate(token, _tokens.Now).Error, Is.EqualTo(TokenErrors.Revoked));
    }

    [Test]
    public void CertificateBound_ThumbprintMissing_Rejected() =>
        AssertRejected(_tokens.Sign(c => c["cnf"] = new JsonObject { ["x5t#S256"] = Thumbprint(1) }), TokenErrors.Confirmation);

    [Test]
    public void CertificateBound_ThumbprintMismatch_Rejected()
    {
        var token = _tokens.Sign(c => c["cnf"] = new JsonObject { ["x5t#S256"] = Thumbprint(1) });
        Assert.Multiple(() =>
        {
            Assert.That(_validator.Validate(token, _tokens.Now, Thumbprint(2)).Error, Is.EqualTo(TokenErrors.Confirmation));
            Assert.That(_validator.Validate(token, _tokens.Now, Thumbprint(1)).IsValid, Is.True);
        });
    }

    [TestCase("{}")]
    [TestCase("{\"jkt\":7}")]
    [TestCase("\"abc\"")]
    public void UnknownConfirmationMethod_Rejected(string cnf) =>
        AssertRejected(_tokens.Sign(c => c["cnf"] = JsonNode.Parse(cnf)), TokenErrors.Confirmation);

    private static string Thumbprint(byte seed) => TestTokens.B64(SHA256.HashData([seed]));

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];

    private TokenValidationResult Validate(string token) => _validator.Validate(token, _tokens.Now);

    private void AssertRejected(string token, string reason)
    {
        var result = Validate(token);
        Assert.Multiple(() =>
        {
            Assert.That(result.IsValid, Is.False);
            Assert.That(result.Token, Is.Null);
            Assert.That(result.Error, Is.EqualTo(reason));
        });
    }
}
