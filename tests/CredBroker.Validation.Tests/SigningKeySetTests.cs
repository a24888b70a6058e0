using CredBroker.Core.Tokens;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

public sealed class SigningKeySetTests
{
    [Test]
    public void BrokerJwks_ParsesEveryKey()
    {
        using var a = SigningKey.Generate();
        using var b = SigningKey.Generate();

        var set = SigningKeySet.Parse(Jwks.Write([a, b]));

        Assert.That(set.KeyIds, Is.EquivalentTo(new[] { a.Kid, b.Kid }));
    }

    [TestCase("{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AQAB\",\"e\":\"AQAB\"}")]
    [TestCase("{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"}")]
    [TestCase("{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}")]
    public void NonEs256Keys_AreSkipped(string otherKey)
    {
        using var a = SigningKey.Generate();
        var json = Jwks.Write([a]).Replace("\"keys\":[", "\"keys\":[" + otherKey + ",", StringComparison.Ordinal);

        Assert.That(SigningKeySet.Parse(json).KeyIds, Is.EqualTo(new[] { a.Kid }));
    }

    [TestCase("\"use\":\"sig\"", "\"use\":\"enc\"")]
    [TestCase("\"alg\":\"ES256\"", "\"alg\":\"ES384\"")]
    public void KeyForAnotherUseOrAlg_IsSkipped(string member, string replacement)
    {
        using var a = SigningKey.Generate();
        var json = Jwks.Write([a]).Replace(member, replacement, StringComparison.Ordinal);

        Assert.That(SigningKeySet.Parse(json).KeyIds, Is.Empty);
    }

    [Test]
    public void KeyWithoutAlgAndUse_IsAccepted()
    {
        using var a = SigningKey.Generate();
        var json = Jwks.Write([a]).Replace(",\"alg\":\"ES256\",\"use\":\"sig\"", "", StringComparison.Ordinal);

        Assert.That(SigningKeySet.Parse(json).Find(a.Kid), Is.Not.Null);
    }

    [Test]
    public void DuplicateKid_Rejected()
    {
        using var a = SigningKey.Generate();
        Assert.Throws<FormatException>(() => SigningKeySet.Parse(Jwks.Write([a, a])));
    }

    [Test]
    public void PointNotOnTheCurve_Rejected()
    {
        using var a = SigningKey.Generate();
        var bogusY = TestTokens.B64(new byte[32]);
        Assert.Throws<FormatException>(() => SigningKeySet.Parse(Jwks.Write([a]).Replace(a.Y, bogusY, StringComparison.Ordinal)));
    }

    [Test]
    public void DuplicateMemberInAKey_Rejected()
    {
        using var a = SigningKey.Generate();
        Assert.Throws<FormatException>(() => SigningKeySet.Parse(Jwks.Write([a]).Replace("\"kty\":\"EC\"", "\"kty\":\"EC\",\"kty\":\"EC\"", StringComparison.Ordinal)));
    }
}
