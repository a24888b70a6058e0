namespace CredBroker.Validation;

/// <summary>The outcome of validating one token: either <see cref="Token"/> or an <see cref="Error"/> reason code.</summary>
public sealed class TokenValidationResult
{
    private TokenValidationResult(ValidatedToken? token, string? error)
    {
        Token = token;
        Error = error;
    }

    /// <summary>True when every check passed; <see cref="Token"/> is then set.</summary>
    public bool IsValid => Token is not null;

    /// <summary>The token's claims, when valid.</summary>
    public ValidatedToken? Token { get; }

    /// <summary>A short reason code from <see cref="TokenErrors"/> when invalid.</summary>
    public string? Error { get; }

    internal static TokenValidationResult Success(ValidatedToken token) => new(token, null);

    internal static TokenValidationResult Failure(string error) => new(null, error);

    /// <inheritdoc />
    public override string ToString() => IsValid ? "valid" : "invalid: " + Error;
}
