using System.Text.Json;
using System.Text.Json.Serialization;

namespace CredBroker.Core.Signals;

/// <summary>
/// One Shared Signals event stream (SSF 1.0 §8): which receiver owns it, how its SETs are delivered
/// (RFC 8935 push or RFC 8936 poll), and where it stands in the revocation log. <see cref="Cursor"/>
/// (a <see cref="Leases.RevocationCursor"/>, null = from the oldest retained event) moves only past
/// events the receiver acknowledged (poll: acked; push: answered 202), so a receiver that was down
/// resumes where it stopped. <see cref="AckedAhead"/> holds jtis acknowledged out of order beyond
/// the cursor, so they are not delivered again. <see cref="Version"/> fences concurrent writers.
/// </summary>
public sealed record SsfStream
{
    public required string StreamId { get; init; }

    /// <summary>The configured receiver that created it; no other receiver sees it.</summary>
    public required string Receiver { get; init; }

    /// <summary>The SETs' <c>aud</c>.</summary>
    public required string Audience { get; init; }

    /// <summary><see cref="SsfNames.PushDelivery"/> or <see cref="SsfNames.PollDelivery"/>.</summary>
    public required string DeliveryMethod { get; init; }

    /// <summary>Push: the receiver's endpoint. Poll: null (the transmitter's poll URL is derived from the id).</summary>
    public string? EndpointUrl { get; init; }

    /// <summary>Push: the Authorization header value sent with each SET (write-only: never returned).</summary>
    public string? AuthorizationHeader { get; init; }

    public IReadOnlyList<string> EventsRequested { get; init; } = [];

    /// <summary><c>enabled</c>, <c>paused</c> (events are held and delivered on resume) or <c>disabled</c> (events are skipped).</summary>
    public string Status { get; init; } = SsfNames.Enabled;

    public string? StatusReason { get; init; }

    public string? Description { get; init; }

    public string? Cursor { get; init; }

    public IReadOnlyList<string> AckedAhead { get; init; } = [];

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Set by the store on each successful write (1 for a new stream).</summary>
    public long Version { get; init; }

    /// <summary>Whether the stream delivers the CredBroker revocation events (session-revoked).</summary>
    [JsonIgnore]
    public bool WantsRevocations => EventsRequested.Count == 0 || EventsRequested.Contains(SsfNames.SessionRevoked, StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static SsfStream FromJson(string json) =>
        JsonSerializer.Deserialize<SsfStream>(json, Json) ?? throw new FormatException("Not an SSF stream document.");
}

/// <summary>The URIs and names SSF 1.0, CAEP 1.0 and RFC 8935/8936 fix.</summary>
public static class SsfNames
{
    public const string SpecVersion = "1_0";
    public const string PushDelivery = "urn:ietf:rfc:8935";
    public const string PollDelivery = "urn:ietf:rfc:8936";
    public const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string SetType = "secevent+jwt";
    public const string SetMediaType = "application/secevent+jwt";
    public const string Enabled = "enabled";
    public const string Paused = "paused";
    public const string Disabled = "disabled";

    public static bool IsStatus(string? status) => status is Enabled or Paused or Disabled;
}

/// <summary>Where SSF streams live (Redis in production, so cursors survive a restart and every replica sees them).</summary>
public interface ISsfStreamStore
{
    Task<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken);

    Task<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken);

    /// <summary>
    /// Writes <paramref name="stream"/> if the stored version is <paramref name="expectedVersion"/>
    /// (0: the stream must not exist yet); the stored copy gets version + 1. False when another writer won.
    /// </summary>
    Task<bool> TrySaveAsync(SsfStream stream, long expectedVersion, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string streamId, CancellationToken cancellationToken);

    /// <summary>
    /// Claims (or renews) the right to push <paramref name="streamId"/> for <paramref name="ttl"/>, so
    /// one replica at a time pushes a stream; true when <paramref name="owner"/> holds it.
    /// </summary>
    Task<bool> TryClaimPushAsync(string streamId, string owner, TimeSpan ttl, CancellationToken cancellationToken);
}
