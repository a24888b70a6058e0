using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CredBroker.Testing;

namespace CredBroker.Validation.Tests;

/// <summary>DpopProofValidator (RFC 9449 §4.3) check by check, the RFC 7638 thumbprint, the replay cache, and cnf.jkt in AccessTokenValidator.</summary>
[TestFixture]
public sealed class DpopProofValidatorTests
{
    private static readonly Uri Target = new("https://api.example/tickets/7");
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly DpopProofOptions _options = new();

    [Test]
    public void Rfc7638_ExampleKey_HasTheRfcThumbprint()
    {
        // RFC 7638 §3.1.
        using var jwk = JsonDocument.Parse("""
            {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}
            """);
        Assert.That(DpopProofValidator.Thumbprint(jwk.RootElement), Is.EqualTo("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    [Test]
    public void ProofByDpopKey_IsAccepted_WithTheKeysThumbprint_AndQueryIgnored()
    {
        using var key = DpopKey.Generate();
        var proof = key.CreateProof("GET", new Uri("https://API.example:443/tickets/7?x=1"), accessToken: "token", now: Now);

        var result = DpopProofValidator.Validate(proof, "GET", Target, Now, _options, "token");

        Assert.That(result.Error, Is.Null, result.Detail);
        Assert.That(result.Proof!.KeyThumbprint, Is.EqualTo(key.Thumbprint));
        Assert.That(result.Proof.IssuedAt, Is.EqualTo(Now));
    }

    private static IEnumerable<TestCaseData> OtherAlgorithms()
    {
        yield return new TestCaseData("ES384", (Func<object>)(() => ECDsa.Create(ECCurve.NamedCurves.nistP384)));
        yield return new TestCaseData("ES512", (Func<object>)(() => ECDsa.Create(ECCurve.NamedCurves.nistP521)));
        yield return new TestCaseData("PS256", (Func<object>)(() => RSA.Create(2048)));
        yield return new TestCaseData("RS256", (Func<object>)(() => RSA.Create(2048)));
    }

    [TestCaseSource(nameof(OtherAlgorithms))]
    public void OtherAsymmetricAlgorithms_AreAccepted(string alg, Func<object> create)
    {
        using var key = (IDisposable)create();
        var proof = Make(alg, key);

        var result = DpopProofValidator.Validate(proof, "POST", Target, Now, _options);

        Assert.That(result.Error, Is.Null, result.Detail);
        Assert.That(result.Proof!.Algorithm, Is.EqualTo(alg));
    }

    [Test]
    public void AlgorithmsOption_RestrictsTheAccepted()
    {
        using var rsa = RSA.Create(2048);
        var options = new DpopProofOptions { Algorithms = ["ES256"] };
        Assert.That(DpopProofValidator.Validate(Make("PS256", rsa), "POST", Target, Now, options).Error, Is.EqualTo(DpopErrors.Algorithm));
    }

    [Test]
    public void ShortRsaKey_IsRefused()
    {
        using var rsa = RSA.Create(1024);
        Assert.That(DpopProofValidator.Validate(Make("RS256", rsa), "POST", Target, Now, _options).Error, Is.EqualTo(DpopErrors.Key));
    }

    [Test]
    public void EcKeyOnTheWrongCurveForAlg_IsRefused()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var proof = Make("ES384", p384, header: h => h["alg"] = "ES256");
        Assert.That(DpopProofValidator.Validate(proof, "POST", Target, Now, _options).Error, Is.EqualTo(DpopErrors.Key));
    }

    [TestCase(-62, DpopErrors.IssuedAt)]
    [TestCase(-59, null)]
    [TestCase(5, null)]
    [TestCase(6, DpopErrors.IssuedAt)]
    public void IatWindow_IsEnforcedInBothDirections(int offsetSeconds, string? error)
    {
        using var key = DpopKey.Generate();
        var proof = key.CreateProof("POST", Target, now: Now.AddSeconds(offsetSeconds));
        Assert.That(DpopProofValidator.Validate(proof, "POST", Target, Now, _options).Error, Is.EqualTo(error));
    }

    [Test]
    public void AccessTokenHash_MustMatchThePresentedToken()
    {
        using var key = DpopKey.Generate();
        Assert.Multiple(() =>
        {
            Assert.That(DpopProofValidator.Validate(key.CreateProof("GET", Target, "token-a", Now), "GET", Target, Now, _options, "token-b").Error, Is.EqualTo(DpopErrors.AccessTokenHash));
            Assert.That(DpopProofValidator.Validate(key.CreateProof("GET", Target, null, Now), "GET", Target, Now, _options, "token-b").Error, Is.EqualTo(DpopErrors.AccessTokenHash));
        });
    }

    [Test]
    public void DuplicateMemberOrLongJti_IsRefused()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var duplicate = DpopProofs.Make(ec, Target.AbsoluteUri, header: h => h["typ"] = "dpop+jwt");
        var parts = duplicate.Split('.');
        var header = Encoding.UTF8.GetString(Convert.FromBase64String(Pad(parts[0]))).Replace("{", "{\"typ\":\"x\",", StringComparison.Ordinal);
        var tampered = DpopProofs.B64(Encoding.UTF8.GetBytes(header)) + "." + parts[1] + "." + parts[2];
        Assert.Multiple(() =>
        {
            Assert.That(DpopProofValidator.Validate(tampered, "POST", Target, Now, _options).Error, Is.EqualTo(DpopErrors.Malformed));
            Assert.That(DpopProofValidator.Validate(DpopProofs.Make(ec, Target.AbsoluteUri, payload: p => p["jti"] = new string('j', 257), now: Now),
                "POST", Target, Now, _options).Error, Is.EqualTo(DpopErrors.TokenId));
        });
    }

    [Test]
    public void ReplayCache_RemembersUntilExpiry_AndRefusesWhenFull()
    {
        var cache = new DpopReplayCache(capacity: 2);
        Assert.Multiple(() =>
        {
            Assert.That(cache.TryAdd("a", Now.AddSeconds(60), Now), Is.EqualTo(ReplayOutcome.First));
            Assert.That(cache.TryAdd("a", Now.AddSeconds(60), Now.AddSeconds(30)), Is.EqualTo(ReplayOutcome.Replayed));
            Assert.That(cache.TryAdd("b", Now.AddSeconds(90), Now), Is.EqualTo(ReplayOutcome.First));
            Assert.That(cache.TryAdd("c", Now.AddSeconds(90), Now), Is.EqualTo(ReplayOutcome.Full), "full of live entries: refuse, never forget one early");
            Assert.That(cache.TryAdd("c", Now.AddSeconds(120), Now.AddSeconds(61)), Is.EqualTo(ReplayOutcome.First), "a's entry expired and made room");
            Assert.That(cache.Count, Is.EqualTo(2));
        });
    }

    [Test]
    public void AccessTokenValidator_DpopBoundToken_NeedsAProofByItsKey()
    {
        using var tokens = new TestTokens();
        using var key = DpopKey.Generate();
        var validator = tokens.Validator();
        var bound = tokens.Minter.Mint(TestTokens.Lease("lease-1", TestTokens.Audience), TestTokens.Agent(), ["demo:read"], TestTokens.Audience, null, key.Thumbprint).AccessToken;
        var unbound = tokens.Mint().AccessToken;

        Assert.Multiple(() =>
        {
            Assert.That(validator.Validate(bound, tokens.Now).Error, Is.EqualTo(DpopErrors.Binding), "a DPoP-bound token presented as a bearer token");
            Assert.That(validator.Validate(bound, tokens.Now, null, "other-thumbprint").Error, Is.EqualTo(DpopErrors.Binding));
            Assert.That(validator.Validate(bound, tokens.Now, null, key.Thumbprint).Token!.KeyThumbprint, Is.EqualTo(key.Thumbprint));
            Assert.That(validator.Validate(unbound, tokens.Now, null, key.Thumbprint).Error, Is.EqualTo(DpopErrors.Binding), "a DPoP proof with an unbound token");
        });
    }

    [Test]
    public void AccessTokenValidator_TokenBoundToCertificateAndKey_NeedsBoth()
    {
        using var tokens = new TestTokens();
        using var key = DpopKey.Generate();
        const string certificate = "cert-thumbprint";
        var validator = tokens.Validator();
        var both = tokens.Minter.Mint(TestTokens.Lease("lease-1", TestTokens.Audience), TestTokens.Agent(), ["demo:read"], TestTokens.Audience, certificate, key.Thumbprint).AccessToken;

        Assert.Multiple(() =>
        {
            Assert.That(validator.Validate(both, tokens.Now, certificate, key.Thumbprint).IsValid, Is.True);
            Assert.That(validator.Validate(both, tokens.Now, null, key.Thumbprint).Error, Is.EqualTo(TokenErrors.Confirmation));
            Assert.That(validator.Validate(both, tokens.Now, certificate, null).Error, Is.EqualTo(DpopErrors.Binding));
        });
    }

    private static string Pad(string s) => s.Replace('-', '+').Replace('_', '/') + new string('=', (4 - (s.Length % 4)) % 4);

    /// <summary>A proof signed with an ECDsa or RSA key for <paramref name="alg"/>, its jwk built here.</summary>
    private static string Make(string alg, IDisposable key, Action<JsonObject>? header = null)
    {
        JsonObject jwk;
        if (key is ECDsa ec)
        {
            var parameters = ec.ExportParameters(false);
            var crv = parameters.Curve.Oid.FriendlyName switch { "nistP384" or "ECDSA_P384" => "P-384", "nistP521" or "ECDSA_P521" => "P-521", _ => "P-256" };
            jwk = new JsonObject { ["kty"] = "EC", ["crv"] = crv, ["x"] = DpopProofs.B64(parameters.Q.X), ["y"] = DpopProofs.B64(parameters.Q.Y) };
        }
        else
        {
            var parameters = ((RSA)key).ExportParameters(false);
            jwk = new JsonObject { ["kty"] = "RSA", ["n"] = DpopProofs.B64(parameters.Modulus), ["e"] = DpopProofs.B64(parameters.Exponent) };
        }

        var h = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = alg, ["jwk"] = jwk };
        header?.Invoke(h);
        var p = new JsonObject { ["jti"] = Guid.NewGuid().ToString("N"), ["htm"] = "POST", ["htu"] = Target.AbsoluteUri, ["iat"] = Now.ToUnixTimeSeconds() };
        var input = DpopProofs.B64(Encoding.UTF8.GetBytes(h.ToJsonString())) + "." + DpopProofs.B64(Encoding.UTF8.GetBytes(p.ToJsonString()));
        var data = Encoding.ASCII.GetBytes(input);
        var signature = key switch
        {
            ECDsa e => e.SignData(data, alg == "ES512" ? HashAlgorithmName.SHA512 : alg == "ES384" ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256),
            RSA r => r.SignData(data, HashAlgorithmName.SHA256, alg == "PS256" ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1),
            _ => throw new ArgumentException("key"),
        };
        return input + "." + DpopProofs.B64(signature);
    }
}
