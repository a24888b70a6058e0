using System.Globalization;
using System.Text;

namespace CredBroker.Core.Audit;

/// <summary>
/// A signed statement "the chain had <see cref="Hash"/> at <see cref="Sequence"/> at <see cref="Time"/>".
/// Whoever can rewrite the store can recompute hashes, but not signatures: records removed from
/// the end of the chain before the latest checkpoint are detected even when the head is rewritten.
/// </summary>
public sealed record AuditCheckpoint(long Sequence, string Hash, DateTimeOffset Time, string KeyId, string Signature)
{
    public static AuditCheckpoint Create(IAuditSigner signer, long sequence, string hash, DateTimeOffset time)
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());
        return new AuditCheckpoint(sequence, hash, at, signer.KeyId, Convert.ToBase64String(signer.Sign(Payload(sequence, hash, at))));
    }

    public bool IsSignedBy(IAuditSigner signer)
    {
        if (KeyId != signer.KeyId)
        {
            return false;
        }

        try
        {
            return signer.Verify(Payload(Sequence, Hash, Time), Convert.FromBase64String(Signature));
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static byte[] Payload(long sequence, string hash, DateTimeOffset time) =>
        Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"credbroker-audit-checkpoint:v1\n{sequence}\n{hash}\n{time.ToUnixTimeMilliseconds()}"));
}
