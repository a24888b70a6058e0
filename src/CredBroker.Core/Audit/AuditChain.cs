using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace CredBroker.Core.Audit;

/// <summary>
/// The hash chain: record n's hash is SHA-256 over its sequence number, record n-1's hash and its
/// canonical body, so editing, deleting or reordering any record changes every hash after it.
/// </summary>
public static class AuditChain
{
    /// <summary>The "previous hash" of record 1.</summary>
    public static readonly string GenesisHash = new('0', 64);

    public static string Hash(long sequence, string previousHash, string body)
    {
        var input = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"credbroker-audit:v1\n{sequence}\n{previousHash}\n{body}"));
        return Convert.ToHexStringLower(SHA256.HashData(input));
    }

    /// <summary>The record that follows <paramref name="state"/>'s head.</summary>
    public static AuditRecord Next(AuditLogState state, string body)
    {
        var sequence = state.HeadSequence + 1;
        return new AuditRecord(sequence, state.HeadHash, Hash(sequence, state.HeadHash, body), body, "");
    }
}
