using System.Text;
using CredBroker.Core.Tokens;
using CredBroker.Testing;

namespace CredBroker.Core.Tests.Security;

/// <summary>
/// Issue 15, item 3: the broker's token reader answers "not a valid token" (null) for every
/// malformed input — bad base64url, bad JSON, wrong segment counts, huge, non-UTF-8, lone
/// surrogates, wrong claim types — including payloads carrying a valid signature; never an exception.
/// </summary>
[TestFixture]
public sealed class MalformedTokenTests
{
    private const string Issuer = "https://broker.test";
    private static readonly ManualTimeProvider Time = new(DateTimeOffset.UtcNow);
    private static readonly SigningKey Key = SigningKey.Generate();
    private static readonly TokenReader Reader = new(new StaticSigningKeys([Key]), Issuer, Time);

    private static string B64(string s) => B64(Encoding.UTF8.GetBytes(s));

    private static string B64(byte[] b) => System.Buffers.Text.Base64Url.EncodeToString(b);

    /// <summary>A token whose signature is valid over whatever header and payload bytes it carries.</summary>
    private static string Signed(byte[] header, byte[] payload)
    {
        var input = B64(header) + "." + B64(payload);
        return input + "." + B64(Key.Sign(Encoding.ASCII.GetBytes(input)));
    }

    private static string Header => $"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{Key.Kid}\"}}";

    private static void Inactive(string token)
    {
        TokenClaims? claims = null;
        Assert.That(() => claims = Reader.Read(token), Throws.Nothing, $"token '{(token.Length > 80 ? token[..80] : token)}'");
        Assert.That(claims, Is.Null);
    }

    public static IEnumerable<string> MalformedCompactTokens()
    {
        yield return "a";
        yield return "a.b";
        yield return "a.b.c.d";
        yield return "....";
        yield return "..";
        yield return "!!!.???.***";
        yield return "eyJ.eyJ.";
        yield return B64("{") + "." + B64("{") + ".AAAA";
        yield return B64(new byte[] { 0xff, 0xfe, 0x80 }) + "." + B64(new byte[] { 0xc3, 0x28 }) + ".AAAA";
        yield return B64(Header) + ".%%%." + "AAAA";
        yield return B64(Header) + "." + B64("{}") + ".A";
        yield return B64(Header) + "." + B64("{}") + "." + new string('A', 7000);
        yield return new string('a', 9000) + "." + "b" + "." + "c";
        yield return B64("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"\\ud800\"}") + "." + B64("{}") + ".AAAA";
        yield return B64("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":{\"a\":1}}") + "." + B64("{}") + ".AAAA";
        yield return B64("[1,2,3]") + "." + B64("{}") + ".AAAA";
        yield return B64(new string('[', 100)) + "." + B64("{}") + ".AAAA";
        yield return "\ud800.\udc00.x";
        yield return "é.é.é";
        yield return "a\n.b\n.c\n";
    }

    [TestCaseSource(nameof(MalformedCompactTokens))]
    public void MalformedCompactToken_IsInactive(string token) => Inactive(token);

    public static IEnumerable<string> SignedOddPayloads()
    {
        yield return "{\"iss\":\"\\ud800\",\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":99999999999}";
        yield return $"{{\"iss\":\"{Issuer}\",\"sub\":\"\\udc00\\ud800\",\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":99999999999}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"act\":{{\"sub\":\"\\ud800\",\"act\":{{\"sub\":\"\\ud800\"}}}},\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":99999999999}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"parent_lease_ids\":[\"\\ud800\"],\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":99999999999}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"cnf\":{{\"x5t#S256\":\"\\ud800\"}},\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":99999999999}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":1e400}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":-99999999999999999999}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"lease_id\":\"x\",\"jti\":\"j\",\"exp\":\"soon\"}}";
        yield return $"{{\"iss\":\"{Issuer}\",\"iss\":\"{Issuer}\"}}";
        yield return "[]";
        yield return "\"string\"";
        yield return "null";
        yield return "{\"a\":" + new string('[', 50) + new string(']', 50) + "}";
        yield return "{";
    }

    [TestCaseSource(nameof(SignedOddPayloads))]
    public void SignedTokenWithOddPayload_IsInactive_NotAnException(string payload) =>
        Inactive(Signed(Encoding.UTF8.GetBytes(Header), Encoding.UTF8.GetBytes(payload)));

    [Test]
    public void SignedTokenWithNonUtf8Payload_IsInactive() =>
        Inactive(Signed(Encoding.UTF8.GetBytes(Header), [0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));

    [Test]
    public void RandomTokens_AreInactive_NotAnException()
    {
        var random = new Random(15_003);
        const string alphabet = "ABCDEFabcdef0123456789-_.=+/ \n\u00e9\ud800";
        for (var i = 0; i < 5_000; i++)
        {
            var text = new StringBuilder();
            for (var j = random.Next(1, 300); j > 0; j--)
            {
                text.Append(alphabet[random.Next(alphabet.Length)]);
            }

            Inactive(text.ToString());
        }

        for (var i = 0; i < 2_000; i++)
        {
            var payload = new byte[random.Next(0, 200)];
            random.NextBytes(payload);
            Inactive(Signed(Encoding.UTF8.GetBytes(Header), payload));
        }
    }
}
