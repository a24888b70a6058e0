using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Auth;

/// <summary>
/// How a JWT from an external issuer is checked: its JWKS file's keys, asymmetric algorithms only,
/// required <c>exp</c>, and a lifetime check on the broker's <see cref="TimeProvider"/> with bounded
/// skew. Shared by the credentials the broker trusts from outside (user tokens; workload credentials
/// use the same rules).
/// </summary>
public static class JwtIssuerTrust
{
    public static IReadOnlySet<string> AsymmetricAlgorithms { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256,
    };

    public static TokenValidationParameters Parameters(
        string issuer, string audience, string jwksFile, IEnumerable<string> algorithms, TimeSpan clockSkew, TimeProvider time)
    {
        if (!File.Exists(jwksFile))
        {
            throw new InvalidOperationException($"The JWKS file '{jwksFile}' of issuer '{issuer}' does not exist.");
        }

        var keys = new JsonWebKeySet(File.ReadAllText(jwksFile)).GetSigningKeys();
        return Parameters(issuer, audience, () => keys, algorithms, clockSkew, time);
    }

    /// <summary>The same rules with keys that may change (a JWKS URL refreshed in the background).</summary>
    public static TokenValidationParameters Parameters(
        string issuer, string audience, Func<IEnumerable<SecurityKey>> keys, IEnumerable<string> algorithms, TimeSpan clockSkew, TimeProvider time)
    {
        return new TokenValidationParameters
        {
            ValidIssuer = issuer,
            ValidAudience = audience,
            IssuerSigningKeyResolver = (_, _, _, _) => keys(),
            ValidAlgorithms = algorithms.Where(AsymmetricAlgorithms.Contains).ToList(),
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = clockSkew,
            LifetimeValidator = (notBefore, expires, _, parameters) => LifetimeCovers(notBefore, expires, parameters.ClockSkew, time.GetUtcNow().UtcDateTime),
        };
    }

    /// <summary>What is wrong with a credential, in words for the caller (no token content).</summary>
    public static string Describe(Exception? e, string what) => e switch
    {
        SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException => $"The {what} is expired or not yet valid.",
        SecurityTokenInvalidAudienceException => $"The {what} is not meant for this broker (audience mismatch).",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => $"The {what}'s signature does not verify against its issuer's keys.",
        SecurityTokenInvalidAlgorithmException => $"The {what}'s signing algorithm is not allowed.",
        _ => $"The {what} is not valid.",
    };

    public static string Clip(string value) => value.Length <= 128 ? value : value[..128] + "…";

    private static bool LifetimeCovers(DateTime? notBefore, DateTime? expires, TimeSpan skew, DateTime now) =>
        expires is { } exp && exp.ToUniversalTime() + skew > now
        && (notBefore is not { } nbf || nbf.ToUniversalTime() - skew <= now);
}
