using System.Globalization;
using System.Text;

namespace CredBroker.Core.Audit;

/// <summary>
/// A signed statement "the chain had <see cref="Hash"/> at <see cref="Sequence"/> at <see cref="Time"/>,
/// and the next checkpoint is due within <see cref="Interval"/> records". Whoever can rewrite the
/// store can recompute hashes, but not signatures: a checkpoint is required every interval, so
/// records rewritten or removed before the newest one are detected even when the head is rewritten
/// and later checkpoints are deleted. The retention anchor is a checkpoint too (its signature is kept
/// with the anchor), so the chain cannot be re-anchored where the broker did not sign.
/// </summary>
public sealed record AuditCheckpoint(long Sequence, string Hash, DateTimeOffset Time, string KeyId, string Signature, int Interval)
{
    public static AuditCheckpoint Create(IAuditSigner signer, long sequence, string hash, DateTimeOffset time, int interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, 1);
        var at = DateTimeOffset.FromUnixTimeMilliseconds(time.ToUnixTimeMilliseconds());
        return new AuditCheckpoint(sequence, hash, at, signer.KeyId, Convert.ToBase64String(signer.Sign(Payload(sequence, hash, at, interval))), interval);
    }

    public bool IsSignedBy(IAuditSigner signer)
    {
        if (KeyId != signer.KeyId || Interval < 1)
        {
            return false;
        }

        try
        {
            return signer.Verify(Payload(Sequence, Hash, Time, Interval), Convert.FromBase64String(Signature));
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static byte[] Payload(long sequence, string hash, DateTimeOffset time, int interval) =>
        Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"credbroker-audit-checkpoint:v2\n{sequence}\n{hash}\n{time.ToUnixTimeMilliseconds()}\n{interval}"));
}
