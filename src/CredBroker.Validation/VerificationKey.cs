using System.Security.Cryptography;

namespace CredBroker.Validation;

/// <summary>One public P-256 key from the JWKS, pinned to ES256: it verifies nothing but ES256 signatures.</summary>
public sealed class VerificationKey
{
    private readonly ECParameters _parameters;

    internal VerificationKey(string kid, ECParameters parameters)
    {
        Kid = kid;
        _parameters = parameters;
    }

    /// <summary>The key id the token header names.</summary>
    public string Kid { get; }

    /// <summary>Verifies an ES256 signature in the JWS encoding (IEEE P1363, 64 bytes r||s).</summary>
    internal bool VerifyEs256(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != 64)
        {
            return false;
        }

        // A fresh ECDsa per verification: ECDsa instances are not documented as thread-safe, and
        // the import is cheap next to the verification itself.
        using var ecdsa = ECDsa.Create(_parameters);
        return ecdsa.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }
}
