using System.Text.Json;
using CredBroker.Server.Rpc;
using Grpc.Core;
using CredBroker.Server.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Auth;

/// <summary>A JWT credential that verified: who issued it, whom it names, the groups it carries.</summary>
/// <param name="Claims">Its top-level string claims (bounded), the sources of verified context labels.</param>
public sealed record VerifiedCredential(
    string Issuer, string Subject, IReadOnlyCollection<string> Groups, IReadOnlyList<SubjectPattern> Workloads, IReadOnlyDictionary<string, string>? Claims = null);

/// <summary>
/// JWT credentials from trusted issuers (Kubernetes projected service-account tokens, SPIFFE
/// JWT-SVIDs, any OIDC issuer): signature against the issuer's JWKS (file or URL), exact issuer and
/// audience, an allow-listed asymmetric algorithm, exp/nbf with 30 s skew and an iat no older than
/// the issuer's MaxCredentialAge. Every refusal is UNAUTHENTICATED and says why.
/// </summary>
public sealed class WorkloadJwtAuthenticator
{
    private static readonly string[] DefaultAlgorithms = ["ES256", "ES384", "RS256", "PS256"];

    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = BearerToken.MaxLength };
    private readonly Dictionary<string, Issuer> _issuers = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly VerifiedCredentialCache _verified;

    /// <param name="cacheSize">Validated credentials remembered until they expire (0: validate every call in full).</param>
    public WorkloadJwtAuthenticator(IEnumerable<BrokerOptions.TrustedIssuerOptions> issuers, TimeProvider time, int cacheSize = 0, HttpClient? http = null)
    {
        _time = time;
        _verified = new VerifiedCredentialCache(time, cacheSize);
        foreach (var options in issuers)
        {
            var keys = Keys(options, time, http);
            var algorithms = options.Algorithms.Count > 0 ? options.Algorithms : [.. DefaultAlgorithms];
            if (algorithms.FirstOrDefault(a => !JwtIssuerTrust.AsymmetricAlgorithms.Contains(a)) is { } bad)
            {
                throw new InvalidOperationException($"Trusted issuer '{options.Issuer}': algorithm '{bad}' is not allowed (asymmetric JWS algorithms only).");
            }

            var parameters = JwtIssuerTrust.Parameters(options.Issuer, options.Audience, () => keys.Current, algorithms, TimeSpan.FromSeconds(30), time);
            var workloads = options.Workloads.Select(w => new SubjectPattern(w.Subject, w.Agent)).ToList();
            _issuers[options.Issuer] = new Issuer(options, keys, parameters, workloads);
        }
    }

    /// <summary>Verifies the bearer credential of the call.</summary>
    public async Task<VerifiedCredential> VerifyAsync(ServerCallContext context, string groupClaim = "groups")
    {
        var credential = BearerToken.Read(context);
        if (_verified.TryGet(credential, out var remembered))
        {
            return remembered;
        }

        JsonWebToken jwt;
        try
        {
            jwt = _handler.ReadJsonWebToken(credential);
        }
        catch (ArgumentException)
        {
            throw Unauthenticated("The credential is not a JWT (expected a workload credential from a trusted issuer).");
        }

        if (!_issuers.TryGetValue(jwt.Issuer, out var trusted))
        {
            throw Unauthenticated($"The credential's issuer '{JwtIssuerTrust.Clip(jwt.Issuer)}' is not a trusted issuer on this listener.");
        }

        if (!trusted.Parameters.ValidAlgorithms.Contains(jwt.Alg, StringComparer.Ordinal))
        {
            throw Unauthenticated($"The credential's signing algorithm '{JwtIssuerTrust.Clip(jwt.Alg)}' is not allowed for its issuer (allowed: {string.Join(", ", trusted.Parameters.ValidAlgorithms)}).");
        }

        await trusted.Keys.EnsureAsync(jwt.Kid, context.CancellationToken);
        var result = await _handler.ValidateTokenAsync(jwt, trusted.Parameters);
        if (!result.IsValid)
        {
            throw Unauthenticated(JwtIssuerTrust.Describe(result.Exception, "credential"));
        }

        if (trusted.Options.MaxCredentialAge is { } maxAge
            && (!jwt.TryGetPayloadValue<long>("iat", out var iat) || _time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(iat) > maxAge))
        {
            throw Unauthenticated($"The credential was issued more than {maxAge} ago (or has no iat); present a fresh one.");
        }

        var subject = result.Claims.TryGetValue(trusted.Options.SubjectClaim, out var value) ? value?.ToString() : null;
        if (string.IsNullOrEmpty(subject))
        {
            throw Unauthenticated($"The credential has no '{trusted.Options.SubjectClaim}' claim to identify the workload.");
        }

        var verified = new VerifiedCredential(jwt.Issuer, subject, Groups(jwt, groupClaim), trusted.Workloads, StringClaims(jwt));
        var validUntil = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) + trusted.Parameters.ClockSkew;
        if (trusted.Options.MaxCredentialAge is { } age && DateTimeOffset.FromUnixTimeSeconds(jwt.GetPayloadValue<long>("iat")) + age < validUntil)
        {
            validUntil = DateTimeOffset.FromUnixTimeSeconds(jwt.GetPayloadValue<long>("iat")) + age;
        }

        _verified.Add(credential, verified, validUntil);
        return verified;
    }

    public static RpcException Unauthenticated(string message) => RpcErrors.Create(StatusCode.Unauthenticated, message);

    private static IssuerKeys Keys(BrokerOptions.TrustedIssuerOptions options, TimeProvider time, HttpClient? http)
    {
        if (string.IsNullOrWhiteSpace(options.Issuer) || string.IsNullOrWhiteSpace(options.Audience))
        {
            throw new InvalidOperationException($"Trusted issuer '{options.Issuer}' needs Issuer and Audience.");
        }

        if (options.JwksUri is { Length: > 0 } uri)
        {
            return Uri.TryCreate(uri, UriKind.Absolute, out var parsed)
                ? IssuerKeys.FromUri(parsed, http ?? new HttpClient(), options.JwksRefreshInterval, time)
                : throw new InvalidOperationException($"Trusted issuer '{options.Issuer}': JwksUri '{uri}' is not an absolute URL.");
        }

        return File.Exists(options.JwksFile)
            ? IssuerKeys.FromFile(options.JwksFile, time)
            : throw new InvalidOperationException($"Trusted issuer '{options.Issuer}' needs JwksUri or an existing JwksFile (got '{options.JwksFile}').");
    }

    /// <summary>Top-level string claims usable as context label values: at most 64, names ≤ 64 and values ≤ 128 characters, no control characters.</summary>
    private static Dictionary<string, string> StringClaims(JsonWebToken jwt)
    {
        var claims = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in jwt.Claims.Select(c => c.Type).Distinct(StringComparer.Ordinal).Take(256))
        {
            // Only a top-level JSON string: never one element of an array claim.
            if (claims.Count < 64 && name.Length <= 64
                && jwt.TryGetPayloadValue<object>(name, out var value) && value is string { Length: > 0 and <= 128 } text && !text.Any(char.IsControl))
            {
                claims[name] = text;
            }
        }

        return claims;
    }

    private static IReadOnlyCollection<string> Groups(JsonWebToken jwt, string claim)
    {
        if (!jwt.TryGetPayloadValue<JsonElement>(claim, out var groups))
        {
            return [];
        }

        return groups.ValueKind switch
        {
            JsonValueKind.Array => groups.EnumerateArray().Where(g => g.ValueKind == JsonValueKind.String).Select(g => g.GetString()!).Take(256).ToList(),
            JsonValueKind.String => groups.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(256).ToList(),
            _ => [],
        };
    }

    private sealed record Issuer(BrokerOptions.TrustedIssuerOptions Options, IssuerKeys Keys, TokenValidationParameters Parameters, IReadOnlyList<SubjectPattern> Workloads);
}
