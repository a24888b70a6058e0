using Microsoft.Extensions.Options;

namespace CredBroker.Validation.AspNetCore;

/// <summary>Checks a scheme's <see cref="CredBrokerOptions"/>; every failure names the setting and says what is wrong.</summary>
internal sealed class CredBrokerOptionsValidator : IValidateOptions<CredBrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, CredBrokerOptions options)
    {
        var scheme = name ?? Options.DefaultName;
        var failures = new List<string>();
        void Fail(string setting, string problem) => failures.Add($"CredBroker scheme '{scheme}': {setting} {problem}");

        if (string.IsNullOrWhiteSpace(options.Issuer))
        {
            Fail(nameof(options.Issuer), "is required: the broker's issuer URL, exactly as tokens carry it in 'iss'.");
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            Fail(nameof(options.Audience), "is required: this API's audience, exactly as tokens carry it in 'aud'.");
        }

        if (options.JwksFetcher is null)
        {
            if (options.ResolveJwksUri() is not { } jwks)
            {
                Fail(nameof(options.JwksUri), "is not set and cannot be derived from Issuer (not an http(s) URL): set it to the broker's /.well-known/jwks.json.");
            }
            else if (!jwks.IsAbsoluteUri || (jwks.Scheme != Uri.UriSchemeHttps && jwks.Scheme != Uri.UriSchemeHttp))
            {
                Fail(nameof(options.JwksUri), $"must be an absolute http(s) URL, not '{jwks}'.");
            }
            else if (options.RequireHttpsJwksUri && jwks.Scheme != Uri.UriSchemeHttps && !jwks.IsLoopback)
            {
                Fail(nameof(options.JwksUri), $"must use https (keys fetched over plain http can be replaced in transit): '{jwks}'. Set RequireHttpsJwksUri = false only for tests.");
            }
        }

        if (options.RevocationFeed is null && options.RequireRevocationFeed)
        {
            Fail(nameof(options.RevocationFeed), "is required: without it the tokens of a completed or revoked task stay valid until they expire. "
                + "Set it (e.g. new BrokerRevocationFeed(client) from CredBroker.Client), or set RequireRevocationFeed = false to accept that.");
        }

        Positive(nameof(options.JwksRefreshInterval), options.JwksRefreshInterval);
        Positive(nameof(options.JwksMaxStaleness), options.JwksMaxStaleness);
        Positive(nameof(options.JwksFetchTimeout), options.JwksFetchTimeout);
        Positive(nameof(options.RevocationMaxOutage), options.RevocationMaxOutage);
        Positive(nameof(options.MaxTokenLifetime), options.MaxTokenLifetime);
        if (options.JwksMinRefreshInterval < TimeSpan.Zero)
        {
            Fail(nameof(options.JwksMinRefreshInterval), $"must not be negative, not {options.JwksMinRefreshInterval}.");
        }

        if (options.MaxClockSkew < TimeSpan.Zero || options.MaxClockSkew > TokenValidationOptions.MaxAllowedClockSkew)
        {
            Fail(nameof(options.MaxClockSkew), $"must be between 0 and {TokenValidationOptions.MaxAllowedClockSkew}, not {options.MaxClockSkew}: a larger tolerance would defeat short token lifetimes.");
        }

        if (options.MaxTokenSize <= 0)
        {
            Fail(nameof(options.MaxTokenSize), $"must be positive, not {options.MaxTokenSize}.");
        }

        foreach (var problem in options.Dpop?.Problems() ?? ["is required."])
        {
            Fail(nameof(options.Dpop), problem);
        }

        if (options.DpopPublicOrigin is { } origin && (!origin.IsAbsoluteUri || origin.Scheme is not ("http" or "https") || origin.AbsolutePath != "/" || origin.Query.Length > 0))
        {
            Fail(nameof(options.DpopPublicOrigin), $"must be an absolute http(s) scheme and authority without a path, not '{origin}'.");
        }

        if (options.DpopReplayCacheSize is < 1 or > 10_000_000)
        {
            Fail(nameof(options.DpopReplayCacheSize), $"must be between 1 and 10,000,000, not {options.DpopReplayCacheSize}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);

        void Positive(string setting, TimeSpan value)
        {
            if (value <= TimeSpan.Zero)
            {
                Fail(setting, $"must be positive, not {value}.");
            }
        }
    }
}
