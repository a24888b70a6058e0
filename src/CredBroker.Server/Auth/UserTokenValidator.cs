using CredBroker.Core.Broker;
using CredBroker.Core.Delegation;
using CredBroker.Server.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Auth;

/// <summary>
/// Validates user tokens presented as <c>subject_token</c> (delegation on behalf of a user, RFC 8693)
/// against the configured trusted user-token issuers: signature by the issuer's JWKS, exact
/// <c>iss</c>, <c>aud</c> = this broker, <c>exp</c>/<c>nbf</c> within the issuer's skew. The delegated
/// scopes come from the issuer's scope claim (<c>scope</c> space-separated, or <c>scp</c>).
/// </summary>
public sealed class UserTokenValidator : ISubjectTokenValidator
{
    private const int MaxSubjectLength = 256;
    private const string What = "subject_token (user token)";
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = Syntax.MaxTokenLength };
    private readonly Dictionary<string, (BrokerOptions.UserTokenIssuerOptions Options, TokenValidationParameters Parameters)> _issuers = new(StringComparer.Ordinal);

    public UserTokenValidator(IEnumerable<BrokerOptions.UserTokenIssuerOptions> issuers, TimeProvider time)
    {
        foreach (var issuer in issuers)
        {
            _issuers[issuer.Issuer] = (issuer, JwtIssuerTrust.Parameters(issuer.Issuer, issuer.Audience, issuer.JwksFile, issuer.EffectiveAlgorithms, issuer.ClockSkew, time));
        }
    }

    public async Task<UserDelegation> ValidateAsync(string subjectToken, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        string issuer;
        try
        {
            issuer = _handler.ReadJsonWebToken(subjectToken).Issuer;
        }
        catch (ArgumentException)
        {
            throw new SubjectTokenRejectedException("subject_token is not a JWT; present the user's token from a trusted issuer, or a CredBroker token of a parent lease.");
        }

        if (!_issuers.TryGetValue(issuer, out var trusted))
        {
            throw new SubjectTokenRejectedException($"subject_token's issuer '{JwtIssuerTrust.Clip(issuer)}' is not a trusted user-token issuer of this broker.");
        }

        var result = await _handler.ValidateTokenAsync(subjectToken, trusted.Parameters);
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt)
        {
            throw new SubjectTokenRejectedException(JwtIssuerTrust.Describe(result.Exception, What));
        }

        var subject = jwt.Claims.FirstOrDefault(c => c.Type == trusted.Options.SubjectClaim)?.Value;
        if (string.IsNullOrEmpty(subject) || subject.Length > MaxSubjectLength || subject.Any(char.IsControl))
        {
            throw new SubjectTokenRejectedException(
                $"subject_token has no usable '{trusted.Options.SubjectClaim}' claim (the user, at most {MaxSubjectLength} characters without control characters).");
        }

        // A JSON array claim (scp) arrives as one claim per element; a string as one space-separated value.
        var scopes = jwt.Claims.Where(c => c.Type == trusted.Options.ScopeClaim)
            .SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToHashSet(StringComparer.Ordinal);
        if (scopes.Count == 0)
        {
            throw new SubjectTokenRejectedException(
                $"subject_token carries no '{trusted.Options.ScopeClaim}' claim: the user delegated no scope, so nothing can be granted on their behalf.",
                "delegation.user_scope");
        }

        return new UserDelegation(issuer, subject, scopes, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero));
    }
}
