using System.Security.Cryptography;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Audit;

/// <summary>Signs audit checkpoints. The key never leaves the process and is never written to the audit store.</summary>
public interface IAuditSigner
{
    string KeyId { get; }

    byte[] Sign(ReadOnlySpan<byte> data);

    bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature);
}

/// <summary>HMAC-SHA256 with a key from configuration (at least 32 bytes); the key id is a hash of the key, not the key.</summary>
public sealed class HmacAuditSigner : IAuditSigner
{
    private readonly byte[] _key;

    public HmacAuditSigner(byte[] key)
    {
        if (key.Length < 32)
        {
            throw new ArgumentException("The audit HMAC key must be at least 32 bytes.", nameof(key));
        }

        _key = key.ToArray();
        KeyId = "hmac:" + Convert.ToHexStringLower(SHA256.HashData(_key))[..16];
    }

    public string KeyId { get; }

    public byte[] Sign(ReadOnlySpan<byte> data) => HMACSHA256.HashData(_key, data);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) => CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(_key, data), signature);
}

/// <summary>ES256 with one of the broker's token signing keys, so anyone with the JWKS can verify checkpoints.</summary>
public sealed class SigningKeyAuditSigner(SigningKey key) : IAuditSigner
{
    public string KeyId => "es256:" + key.Kid;

    public byte[] Sign(ReadOnlySpan<byte> data) => key.Sign(data);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) => key.Verify(data, signature);
}

/// <summary>
/// ES256 with whichever token signing key is active when a checkpoint is signed (keys rotate); the
/// key id is read from the same key that signs. Verification needs that key still published, so
/// for long retention prefer the HMAC signer.
/// </summary>
public sealed class CurrentSigningKeyAuditSigner(ISigningKeys keys) : IAuditSigner
{
    public string KeyId => "es256:" + keys.Current.Kid;

    public byte[] Sign(ReadOnlySpan<byte> data) => keys.Current.Sign(data);

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature) => keys.Current.Verify(data, signature);
}
