using System.Text.Json;
using System.Text.Json.Serialization;

namespace CredBroker.Core.Tokens;

public enum KeyPhase
{
    /// <summary>In the JWKS, not signing yet: validators learn it before its first token.</summary>
    Published,
    Active,
    /// <summary>No longer signs; still in the JWKS until its last token has expired.</summary>
    Retired,
    Removed,
}

/// <summary>
/// One key's timeline. The public half rides along for operators' information only: a replica
/// publishes, trusts and signs with a scheduled kid only when one of its own key files holds that
/// key (key material never comes from the shared store); the private half never leaves the key files.
/// </summary>
public sealed record ScheduledKey(
    string Kid, string X, string Y, DateTimeOffset PublishAt, DateTimeOffset ActivateAt, DateTimeOffset? RetireAt, DateTimeOffset? RemoveAt)
{
    public KeyPhase PhaseAt(DateTimeOffset t) =>
        t >= RemoveAt ? KeyPhase.Removed
        : t >= RetireAt ? KeyPhase.Retired
        : t >= ActivateAt ? KeyPhase.Active
        : KeyPhase.Published;
}

/// <summary>
/// Which key signs from when, shared by every replica. Times are absolute, so replicas switch at
/// the same instant however late they read the schedule (as long as they read it before the
/// publish lead runs out). <see cref="Version"/> fences concurrent writers.
/// </summary>
public sealed record KeySchedule(long Version, IReadOnlyList<ScheduledKey> Keys)
{
    public const int MaxKeys = 32;

    public static readonly KeySchedule Empty = new(0, []);

    /// <summary>The first key: active at once (nothing signed before it, so nothing to pre-publish).</summary>
    public static KeySchedule Bootstrap(SigningKey key, DateTimeOffset now) =>
        new(1, [new ScheduledKey(key.Kid, key.X, key.Y, now, now, null, null)]);

    public ScheduledKey? SigningKeyAt(DateTimeOffset t) =>
        Keys.Where(k => k.PhaseAt(t) == KeyPhase.Active).MaxBy(k => k.ActivateAt);

    public IEnumerable<ScheduledKey> PublishedAt(DateTimeOffset t) =>
        Keys.Where(k => k.PhaseAt(t) is KeyPhase.Published or KeyPhase.Active or KeyPhase.Retired);

    /// <summary>The rotation scheduled but not yet in force, if any.</summary>
    public ScheduledKey? PendingAt(DateTimeOffset t) => Keys.FirstOrDefault(k => k.PhaseAt(t) == KeyPhase.Published);

    public void EnsureNothingPending(DateTimeOffset now)
    {
        if (PendingAt(now) is { } pending)
        {
            throw new KeyRotationException(KeyRotationError.InProgress,
                $"A rotation is already scheduled: key {pending.Kid} signs from {pending.ActivateAt:O}; rotate again after that.");
        }
    }

    /// <summary>The next instant the signing key or the published set changes after <paramref name="t"/>.</summary>
    public DateTimeOffset? NextChangeAfter(DateTimeOffset t) =>
        Keys.SelectMany(k => new[] { k.PublishAt, k.ActivateAt, k.RetireAt, k.RemoveAt })
            .Where(x => x > t).Min();

    /// <summary>
    /// Publishes <paramref name="next"/> now, makes it sign after <paramref name="publishLead"/>, retires the
    /// current key at that moment and removes it <paramref name="keepAfterRetire"/> later. Keys already
    /// removed are dropped from the schedule.
    /// </summary>
    public KeySchedule Rotate(SigningKey next, DateTimeOffset now, TimeSpan publishLead, TimeSpan keepAfterRetire)
    {
        EnsureNothingPending(now);
        if (Keys.Any(k => k.Kid == next.Kid))
        {
            throw new KeyRotationException(KeyRotationError.KeyUsed,
                $"Key {next.Kid} has already been used by this broker; a retired key is never reused. Mount a new key file.");
        }

        var activateAt = now + publishLead;
        var kept = Keys.Where(k => k.PhaseAt(now) != KeyPhase.Removed)
            .Select(k => k.PhaseAt(now) == KeyPhase.Active
                ? k with { RetireAt = activateAt, RemoveAt = activateAt + keepAfterRetire }
                : k)
            .Append(new ScheduledKey(next.Kid, next.X, next.Y, now, activateAt, null, null))
            .ToList();
        if (kept.Count > MaxKeys)
        {
            throw new KeyRotationException(KeyRotationError.TooManyKeys,
                $"{kept.Count - 1} keys are still published (the limit is {MaxKeys}); wait until retired keys are removed.");
        }

        return new KeySchedule(Version + 1, kept);
    }

    public string ToJson() => JsonSerializer.Serialize(this, KeyScheduleJson.Default.KeySchedule);

    public static KeySchedule FromJson(string json) =>
        JsonSerializer.Deserialize(json, KeyScheduleJson.Default.KeySchedule)
        ?? throw new InvalidDataException("The stored key schedule is empty.");
}

public enum KeyRotationError
{
    InProgress,
    KeyUsed,
    NoSpareKey,
    UnknownKey,
    TooManyKeys,
}

/// <summary>A rotation that cannot happen now; the message says what the operator should do.</summary>
public sealed class KeyRotationException(KeyRotationError error, string message) : Exception(message)
{
    public KeyRotationError Error { get; } = error;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(KeySchedule))]
internal sealed partial class KeyScheduleJson : JsonSerializerContext;
