using System.Security.Cryptography;
using System.Text;
using CredBroker.Server.Hosting;

namespace CredBroker.Server.Signals;

/// <summary>A receiver (a downstream API) allowed to manage its own SSF streams.</summary>
public sealed record SsfReceiver(string Id, string Audience);

/// <summary>
/// Receiver authentication on the HTTP listener: <c>Authorization: Bearer &lt;secret&gt;</c> against the
/// configured secrets (CredBroker:Ssf:Receivers, each from a file; dev mode: the dev agent secret as
/// receiver <c>dev-receiver</c>). Compared in constant time over SHA-256 hashes, every configured
/// secret every time, so neither which receiver nor how much matched leaks through timing.
/// </summary>
public sealed class SsfReceivers
{
    public const string DevReceiverId = "dev-receiver";
    public const int MinSecretLength = 32;
    private readonly IReadOnlyList<(SsfReceiver Receiver, byte[] Hash)> _receivers;

    public SsfReceivers(IEnumerable<(SsfReceiver Receiver, string Secret)> receivers) =>
        _receivers = receivers.Select(r => (r.Receiver, SHA256.HashData(Encoding.UTF8.GetBytes(r.Secret)))).ToList();

    public static SsfReceivers Dev(string devSecret) => new([(new SsfReceiver(DevReceiverId, DevReceiverId), devSecret)]);

    /// <summary>Reads each receiver's secret file now, so a missing or short secret stops the start.</summary>
    public static SsfReceivers FromOptions(BrokerOptions.SsfOptions options)
    {
        var receivers = new List<(SsfReceiver, string)>();
        foreach (var r in options.Receivers)
        {
            string secret;
            try
            {
                secret = File.ReadAllText(r.SecretFile).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new StartupException($"CredBroker refuses to start: CredBroker:Ssf:Receivers ({r.Id}): the SecretFile cannot be read: {e.Message}");
            }

            if (secret.Length < MinSecretLength)
            {
                throw new StartupException($"CredBroker refuses to start: CredBroker:Ssf:Receivers ({r.Id}): the secret in SecretFile must be at least {MinSecretLength} characters.");
            }

            receivers.Add((new SsfReceiver(r.Id, string.IsNullOrWhiteSpace(r.Audience) ? r.Id : r.Audience), secret));
        }

        return new SsfReceivers(receivers);
    }

    /// <summary>The receiver the Authorization header names, or null (missing, malformed or unknown credential).</summary>
    public SsfReceiver? Authenticate(string? authorization)
    {
        if (authorization is null || authorization.Length > 8 * 1024 || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[7..].Trim()));
        SsfReceiver? match = null;
        foreach (var (receiver, hash) in _receivers)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, hash))
            {
                match = receiver;
            }
        }

        return match;
    }
}
