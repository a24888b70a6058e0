using System.Security.Cryptography;

namespace CredBroker.Validation;

/// <summary>One public P-256 key from the JWKS, pinned to ES256: it verifies nothing but ES256 signatures.</summary>
public sealed class VerificationKey
{
    private readonly ThreadLocal<ECDsa> _ecdsa;

    internal VerificationKey(string kid, ECParameters parameters)
    {
        Kid = kid;
        // Importing a key costs several verifications; ECDsa instances are not documented as
        // thread-safe, so each thread imports this key once and reuses it.
        _ecdsa = new ThreadLocal<ECDsa>(() => ECDsa.Create(parameters));
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

        return _ecdsa.Value!.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }
}
