namespace CredBroker.Validation;

/// <summary>What a downstream API accepts. Issuer and audience are compared exactly (ordinal, no normalisation).</summary>
public sealed class TokenValidationOptions
{
    /// <summary>The largest clock skew accepted; a larger tolerance would defeat short token lifetimes.</summary>
    public static readonly TimeSpan MaxAllowedClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>The broker's issuer URL; the token's <c>iss</c> must equal it exactly.</summary>
    public required string Issuer
    {
        get;
        init => field = string.IsNullOrEmpty(value) ? throw new ArgumentException("The issuer is required.", nameof(Issuer)) : value;
    }

    /// <summary>This API's audience; the token's <c>aud</c> must be one string equal to it (an array is rejected).</summary>
    public required string Audience
    {
        get;
        init => field = string.IsNullOrEmpty(value) ? throw new ArgumentException("The audience is required.", nameof(Audience)) : value;
    }

    /// <summary>Tolerance for clock differences with the broker; default 60 s, at most <see cref="MaxAllowedClockSkew"/>.</summary>
    public TimeSpan MaxClockSkew
    {
        get;
        init => field = value < TimeSpan.Zero || value > MaxAllowedClockSkew
            ? throw new ArgumentOutOfRangeException(nameof(MaxClockSkew), value, "The clock skew must be between 0 and 5 minutes.")
            : value;
    } = TimeSpan.FromSeconds(60);

    /// <summary>The longest accepted <c>exp</c> - <c>iat</c>; default 1 hour.</summary>
    public TimeSpan MaxTokenLifetime
    {
        get;
        init => field = value <= TimeSpan.Zero
            ? throw new ArgumentOutOfRangeException(nameof(MaxTokenLifetime), value, "The token lifetime must be positive.")
            : value;
    } = TimeSpan.FromHours(1);

    /// <summary>The longest accepted token, in characters (bytes: a valid token is ASCII); default 8 KiB.</summary>
    public int MaxTokenSize
    {
        get;
        init => field = value <= 0
            ? throw new ArgumentOutOfRangeException(nameof(MaxTokenSize), value, "The token size limit must be positive.")
            : value;
    } = 8 * 1024;
}
