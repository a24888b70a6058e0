using CredBroker.Core.Broker;

namespace CredBroker.Core.Tokens;

public sealed record KeyRotationOptions
{
    /// <summary>How long a new key is in the JWKS before it signs; longer than validators' JWKS cache lifetime. Default 10 min.</summary>
    public TimeSpan PublishLead { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Added to the longest token TTL to keep a retired key published. Default 60 s (validators' default skew).</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Rotate automatically when the signing key has signed this long (null = only on operator request).</summary>
    public TimeSpan? RotateEvery { get; init; }
}

/// <summary>
/// Phased signing-key rotation shared by all replicas: publish the next key, sign with it once
/// validators have had time to fetch it, and keep the retired key published until the last token
/// it signed has expired. Private keys come from each replica's key files; the store holds only
/// the schedule, written with a version check so concurrent rotations cannot both win.
/// </summary>
public sealed class KeyRotation(
    RotatingSigningKeys keys, IKeyScheduleStore store, KeyRotationOptions options, Func<TimeSpan> longestTokenTtl, TimeProvider time)
{
    public KeyRotationOptions Options => options;

    /// <summary>How long a retired key stays published: every token it signed has expired by then.</summary>
    public TimeSpan KeepAfterRetire => longestTokenTtl() + options.ClockSkew;

    /// <summary>
    /// Rescans the key files and loads the shared schedule (writing the first one, with the first
    /// key, when the store has none). Returns key files that failed to load and schedule entries
    /// ignored because no key file here holds them.
    /// </summary>
    public async Task<IReadOnlyList<string>> RefreshAsync(CancellationToken cancellationToken)
    {
        var problems = keys.Ring.Reload();
        keys.Invalidate();
        var schedule = await store.GetAsync(cancellationToken);
        if (schedule.Version == 0)
        {
            var first = keys.Ring.Keys.Count > 0 ? keys.Ring.Keys[0] : keys.Ring.Generate();
            // When this loses, another replica bootstrapped first: either way, read what is stored.
            _ = await store.TryReplaceAsync(0, KeySchedule.Bootstrap(first, time.GetUtcNow()), cancellationToken);

            schedule = await store.GetAsync(cancellationToken);
        }

        keys.Apply(schedule);
        var unheld = keys.UnheldScheduledKids();
        if (unheld.Count == 0)
        {
            return problems;
        }

        // Loud: either a key Secret is missing on this replica, or someone wrote to the key schedule in the store.
        return [.. problems, .. unheld.Select(kid =>
            $"IGNORED key schedule entry '{kid}': no mounted key file on this replica holds it. Key material comes only from key files, " +
            "so it is not published, trusted or used to sign. Mount the key on every replica, or check who wrote the key schedule in the store.")];
    }

    /// <summary>
    /// Schedules a rotation to <paramref name="kid"/> (or the first mounted key never used; in dev mode
    /// a generated one). Throws <see cref="KeyRotationException"/> when it cannot happen now.
    /// </summary>
    public async Task<KeySchedule> RotateAsync(string? kid, CancellationToken cancellationToken)
    {
        try
        {
            return await RotateOnceAsync(kid, cancellationToken);
        }
        catch (StoreUnavailableException e)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable,
                $"The key schedule store is unavailable ({e.Message}); no rotation was scheduled. Retry when it is back.", null, e);
        }
    }

    private async Task<KeySchedule> RotateOnceAsync(string? kid, CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken);
        for (var attempt = 0; ; attempt++)
        {
            var schedule = keys.Schedule;
            schedule.EnsureNothingPending(time.GetUtcNow());
            var next = PickNext(schedule, kid);
            var rotated = schedule.Rotate(next, time.GetUtcNow(), options.PublishLead, KeepAfterRetire);
            if (await store.TryReplaceAsync(schedule.Version, rotated, cancellationToken))
            {
                keys.Apply(rotated);
                return rotated;
            }

            // Someone else wrote the schedule meanwhile; re-read once (it usually makes this rotation "in progress").
            keys.Apply(await store.GetAsync(cancellationToken));
            if (attempt > 0)
            {
                throw new KeyRotationException(KeyRotationError.InProgress, "The key schedule keeps changing under this rotation; retry.");
            }
        }
    }

    /// <summary>The scheduled rotation, when the signing key has signed for <see cref="KeyRotationOptions.RotateEvery"/>; else null.</summary>
    public async Task<KeySchedule?> RotateIfDueAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var schedule = keys.Schedule;
        if (options.RotateEvery is not { } every || schedule.SigningKeyAt(now) is not { } active
            || active.ActivateAt + every > now || schedule.PendingAt(now) is not null)
        {
            return null;
        }

        return await RotateAsync(kid: null, cancellationToken);
    }

    private SigningKey PickNext(KeySchedule schedule, string? kid)
    {
        if (!string.IsNullOrEmpty(kid))
        {
            return keys.Ring.Find(kid) ?? throw new KeyRotationException(KeyRotationError.UnknownKey,
                $"No mounted key file holds kid '{kid}' on this replica (mounted: {string.Join(", ", keys.Ring.Keys.Select(k => k.Kid))}).");
        }

        return keys.Ring.Keys.FirstOrDefault(k => schedule.Keys.All(s => s.Kid != k.Kid))
            ?? (keys.Ring.AllowGenerate ? keys.Ring.Generate()
                : throw new KeyRotationException(KeyRotationError.NoSpareKey,
                    "Every mounted signing key has been used. Add a new PEM EC P-256 key file to Signing:KeyDirectory (or Signing:KeyFiles) on every replica, then rotate."));
    }
}
