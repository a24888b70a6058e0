using CredBroker.Grpc;
using CredBroker.Server.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Auth;

/// <summary>
/// Workload credentials: JWTs from trusted issuers (Kubernetes projected service-account tokens,
/// SPIFFE JWT-SVIDs, any OIDC issuer) validated against the issuer's JWKS, with the subject claim
/// mapped to an agent id. Only asymmetric algorithms are accepted. Built with
/// <see cref="ForOperators"/>, it accepts only the listed operator subjects and maps none to an agent.
/// </summary>
public sealed class WorkloadJwtAuthenticator : ICallerAuthenticator
{
    private readonly IReadOnlySet<string>? _operators;

    private static readonly string[] AllowedAlgorithms =
    [
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSsaPssSha256,
    ];

    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = BearerToken.MaxLength };
    private readonly Dictionary<string, (BrokerOptions.TrustedIssuerOptions Options, TokenValidationParameters Parameters)> _issuers;
    private readonly TimeProvider _time;
    private readonly VerifiedCredentialCache _verified;

    /// <param name="cacheSize">Validated credentials remembered until they expire (0: validate every call in full).</param>
    public WorkloadJwtAuthenticator(IEnumerable<BrokerOptions.TrustedIssuerOptions> issuers, TimeProvider time, int cacheSize = 0)
        : this(issuers, time, null, cacheSize)
    {
    }

    private WorkloadJwtAuthenticator(IEnumerable<BrokerOptions.TrustedIssuerOptions> issuers, TimeProvider time, IReadOnlySet<string>? operators, int cacheSize)
    {
        _time = time;
        _operators = operators;
        _verified = new VerifiedCredentialCache(time, cacheSize);
        _issuers = new(StringComparer.Ordinal);
        foreach (var issuer in issuers)
        {
            if (string.IsNullOrWhiteSpace(issuer.Issuer) || string.IsNullOrWhiteSpace(issuer.Audience) || !File.Exists(issuer.JwksFile))
            {
                throw new InvalidOperationException(
                    $"Trusted issuer '{issuer.Issuer}' needs Issuer, Audience and an existing JwksFile (got '{issuer.JwksFile}').");
            }

            var keys = new JsonWebKeySet(File.ReadAllText(issuer.JwksFile)).GetSigningKeys();
            _issuers[issuer.Issuer] = (issuer, new TokenValidationParameters
            {
                ValidIssuer = issuer.Issuer,
                ValidAudience = issuer.Audience,
                IssuerSigningKeys = keys,
                ValidAlgorithms = AllowedAlgorithms,
                RequireExpirationTime = true,
                RequireSignedTokens = true,
                ClockSkew = TimeSpan.FromSeconds(30),
                LifetimeValidator = ValidateLifetime,
            });
        }
    }

    /// <summary>Operators: a valid JWT from an operator issuer whose subject is in <paramref name="subjects"/>.</summary>
    public static WorkloadJwtAuthenticator ForOperators(
        IEnumerable<BrokerOptions.TrustedIssuerOptions> issuers, IEnumerable<string> subjects, TimeProvider time, int cacheSize = 0) =>
        new(issuers, time, subjects.ToHashSet(StringComparer.Ordinal), cacheSize);

    public async Task<AuthenticatedCaller> AuthenticateAsync(GrpcCallContext context)
    {
        var credential = BearerToken.Read(context);
        if (_verified.TryGet(credential, out var remembered))
        {
            return remembered;
        }

        var caller = await ValidateAsync(credential);
        _verified.Add(credential, caller.Caller, caller.ValidUntil);
        return caller.Caller;
    }

    private async Task<(AuthenticatedCaller Caller, DateTimeOffset ValidUntil)> ValidateAsync(string credential)
    {
        string issuer;
        try
        {
            issuer = _handler.ReadJsonWebToken(credential).Issuer;
        }
        catch (ArgumentException)
        {
            throw new RpcException(StatusCode.Unauthenticated, "The credential is not a JWT (expected a workload credential from a trusted issuer).");
        }

        if (!_issuers.TryGetValue(issuer, out var trusted))
        {
            throw new RpcException(StatusCode.Unauthenticated, $"The credential's issuer '{Clip(issuer)}' is not a trusted workload issuer.");
        }

        var result = await _handler.ValidateTokenAsync(credential, trusted.Parameters);
        if (!result.IsValid)
        {
            throw new RpcException(StatusCode.Unauthenticated, Describe(result.Exception));
        }

        var subject = result.Claims.TryGetValue(trusted.Options.SubjectClaim, out var value) ? value?.ToString() : null;
        if (string.IsNullOrEmpty(subject))
        {
            throw new RpcException(StatusCode.Unauthenticated, $"The credential has no '{trusted.Options.SubjectClaim}' claim to identify the workload.");
        }

        // Accepted up to exp + skew (ValidateLifetime); a remembered credential is accepted exactly as long.
        var validUntil = new DateTimeOffset(DateTime.SpecifyKind(result.SecurityToken.ValidTo, DateTimeKind.Utc)) + trusted.Parameters.ClockSkew;
        if (_operators is not null)
        {
            return _operators.Contains(subject)
                ? (new AuthenticatedCaller(subject, null, "jwt:" + issuer), validUntil)
                : throw new RpcException(StatusCode.Unauthenticated, $"'{Clip(subject)}' is not an operator on this listener.");
        }

        var agentId = trusted.Options.Workloads.FirstOrDefault(w => string.Equals(w.Subject, subject, StringComparison.Ordinal))?.Agent is { Length: > 0 } agent ? agent : null;
        return (new AuthenticatedCaller(subject, agentId, "jwt:" + issuer), validUntil);
    }

    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        return expires is { } exp && exp.ToUniversalTime() + parameters.ClockSkew > now
            && (notBefore is not { } nbf || nbf.ToUniversalTime() - parameters.ClockSkew <= now);
    }

    private static string Describe(Exception? e) => e switch
    {
        SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException => "The credential is expired or not yet valid.",
        SecurityTokenInvalidAudienceException => "The credential is not meant for this broker (audience mismatch).",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "The credential's signature does not verify against the issuer's keys.",
        SecurityTokenInvalidAlgorithmException => "The credential's signing algorithm is not allowed.",
        _ => "The credential is not valid.",
    };

    private static string Clip(string value) => value.Length <= 128 ? value : value[..128] + "…";
}
