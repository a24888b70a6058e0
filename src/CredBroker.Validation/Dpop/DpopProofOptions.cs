namespace CredBroker.Validation;

/// <summary>What a DPoP proof must satisfy besides its method, URI and key.</summary>
public sealed class DpopProofOptions
{
    /// <summary>Oldest accepted <c>iat</c>, relative to now (default 60 s). A proof's <c>jti</c> is remembered this long.</summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Furthest accepted <c>iat</c> ahead of now, for the client's clock running fast (default 5 s).</summary>
    public TimeSpan MaxFuture { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest accepted proof in characters (default 4096; an RSA-4096 proof is about 2.5 KB).</summary>
    public int MaxProofSize { get; set; } = 4096;

    /// <summary>Accepted <c>alg</c> values, a subset of <see cref="DpopProofValidator.SupportedAlgorithms"/> (default: all of them).</summary>
    public IReadOnlyCollection<string> Algorithms { get; set; } = DpopProofValidator.SupportedAlgorithms;

    /// <summary>How long a <c>jti</c> must be remembered to refuse every replay inside the window.</summary>
    public TimeSpan ReplayWindow => MaxAge + MaxFuture + TimeSpan.FromSeconds(1);

    /// <summary>The settings that cannot work, each with the property name; empty when usable.</summary>
    public IEnumerable<string> Problems()
    {
        if (MaxAge <= TimeSpan.Zero || MaxAge > TimeSpan.FromMinutes(10))
        {
            yield return "MaxAge must be more than 0 and at most 10 minutes.";
        }

        if (MaxFuture < TimeSpan.Zero || MaxFuture > TimeSpan.FromMinutes(5))
        {
            yield return "MaxFuture must be between 0 and 5 minutes.";
        }

        if (MaxProofSize is < 512 or > 16384)
        {
            yield return "MaxProofSize must be between 512 and 16384.";
        }

        if (Algorithms is null || Algorithms.Count == 0 || Algorithms.Any(a => !DpopProofValidator.SupportedAlgorithms.Contains(a)))
        {
            yield return $"Algorithms must list one or more of {string.Join(", ", DpopProofValidator.SupportedAlgorithms)}.";
        }
    }
}

/// <summary>A proof that passed every check but replay: the key it binds to, and its <c>jti</c> for the replay cache.</summary>
/// <param name="KeyThumbprint">The RFC 7638 SHA-256 thumbprint of the embedded <c>jwk</c>, base64url: the token's <c>cnf.jkt</c>.</param>
/// <param name="TokenId">The proof's <c>jti</c>.</param>
/// <param name="IssuedAt">The proof's <c>iat</c>.</param>
/// <param name="Algorithm">The proof's <c>alg</c>.</param>
public sealed record DpopProof(string KeyThumbprint, string TokenId, DateTimeOffset IssuedAt, string Algorithm)
{
    /// <summary>The replay-cache key: the thumbprint and the <c>jti</c>, hashed (bounded length; one key cannot burn another key's <c>jti</c>).</summary>
    public string ReplayKey => DpopProofValidator.ReplayKeyOf(KeyThumbprint, TokenId);

    /// <summary>When the proof stops being acceptable: its <c>jti</c> need not be remembered past this.</summary>
    public DateTimeOffset AcceptableUntil(DpopProofOptions options) => IssuedAt + options.MaxAge + TimeSpan.FromSeconds(1);
}

/// <summary>A DPoP proof check's outcome: <see cref="Proof"/>, or <see cref="Error"/> (a <see cref="DpopErrors"/> code) with a human-readable <see cref="Detail"/>.</summary>
public sealed record DpopProofResult(DpopProof? Proof, string? Error, string? Detail)
{
    /// <summary>A refusal with its <see cref="DpopErrors"/> code and a human-readable detail.</summary>
    public static DpopProofResult Fail(string error, string detail) => new(null, error, detail);
}
