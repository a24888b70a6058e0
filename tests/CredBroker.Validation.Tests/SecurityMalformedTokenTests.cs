using System.Text;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

/// <summary>
/// Issue 15, item 3: the validation library refuses every malformed token with a reason — bad
/// base64url, bad JSON, lone surrogates, wrong claim types, non-UTF-8, huge — including ones that
/// carry a valid signature; it never throws.
/// </summary>
public sealed class SecurityMalformedTokenTests
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

    private void Refused(string token)
    {
        TokenValidationResult? result = null;
        Assert.That(() => result = _validator.Validate(token, _tokens.Now), Throws.Nothing, token.Length > 80 ? token[..80] : token);
        Assert.That(result!.IsValid, Is.False);
        Assert.That(result.Error, Is.Not.Null.And.Not.Empty);
    }

    private static string B64(string s) => TestTokens.B64(Encoding.UTF8.GetBytes(s));

    [Test]
    public void MalformedCompactTokens_AreRefused()
    {
        string[] tokens =
        [
            "", "x", "a.b", "a.b.c.d", "!!!.???.***", "eyJ.eyJ.", "é.é.é", "\ud800.\udc00.x",
            B64("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"\\ud800\"}") + "." + B64("{}") + ".AAAA",
            TestTokens.B64([0xff, 0xfe, 0x80]) + "." + TestTokens.B64([0xc3, 0x28]) + ".AAAA",
            new string('a', 20_000) + ".b.c",
        ];
        foreach (var token in tokens)
        {
            Refused(token);
        }
    }

    [TestCase("{\"iss\":\"\\ud800\"}")]
    [TestCase("{\"sub\":\"\\udc00\\ud800\"}")]
    [TestCase("{\"scope\":\"\\ud800\"}")]
    [TestCase("{\"aud\":[\"\\ud800\"]}")]
    [TestCase("{\"jti\":\"\\ud800\"}")]
    [TestCase("{\"lease_id\":\"\\ud800\"}")]
    [TestCase("{\"cnf\":{\"x5t#S256\":\"\\ud800\"}}")]
    [TestCase("{\"act\":{\"sub\":\"\\ud800\",\"act\":{\"sub\":\"\\ud800\"}}}")]
    [TestCase("{\"parent_lease_ids\":[\"\\ud800\"]}")]
    [TestCase("{\"exp\":1e400}")]
    [TestCase("{\"exp\":-99999999999999999999}")]
    [TestCase("{\"exp\":\"soon\"}")]
    public void SignedTokenWithOddClaim_IsRefused_NotAnException(string overlay)
    {
        var payload = System.Text.Json.Nodes.JsonNode.Parse(_tokens.Payload())!.AsObject();
        // Splice the odd member in textually: JsonNode would re-escape it into something valid.
        var member = overlay[1..^1];
        var name = member[1..member.IndexOf('"', 1)];
        payload.Remove(name);
        var text = payload.ToJsonString();
        text = text[..^1] + (text.Length > 2 ? "," : "") + member + "}";

        Refused(_tokens.Sign(_tokens.Header(), text));
    }

    [Test]
    public void SignedTokenWithNonUtf8Payload_IsRefused()
    {
        var header = TestTokens.B64(Encoding.UTF8.GetBytes(_tokens.Header()));
        var payload = TestTokens.B64([0x7b, 0x22, 0x69, 0x73, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]);
        var signature = TestTokens.B64(_tokens.Key.Sign(Encoding.ASCII.GetBytes(header + "." + payload)));

        Refused(header + "." + payload + "." + signature);
    }

    [Test]
    public void RandomTokens_AreRefused_NotAnException()
    {
        var random = new Random(15_0031);
        const string alphabet = "ABCDEFabcdef0123456789-_.=+/ \n\u00e9\ud800";
        for (var i = 0; i < 3_000; i++)
        {
            var text = new StringBuilder();
            for (var j = random.Next(1, 300); j > 0; j--)
            {
                text.Append(alphabet[random.Next(alphabet.Length)]);
            }

            Refused(text.ToString());
        }
    }
}
