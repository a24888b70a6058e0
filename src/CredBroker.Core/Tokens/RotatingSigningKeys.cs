using CredBroker.Core.Broker;

namespace CredBroker.Core.Tokens;

/// <summary>
/// The signing keys as the shared <see cref="KeySchedule"/> says they are right now: the active key
/// signs, published and retired keys are in the JWKS — among the keys this replica's key files hold;
/// schedule entries naming any other kid are ignored. The view is recomputed only when the clock
/// passes the schedule's next change, so the hot path is a field read.
/// </summary>
public sealed class RotatingSigningKeys(KeyRing ring, TimeProvider time) : ISigningKeys
{
    private readonly Lock _gate = new();
    private KeySchedule _schedule = KeySchedule.Empty;
    private volatile View? _view;

    public KeyRing Ring => ring;

    public KeySchedule Schedule => Volatile.Read(ref _schedule);

    public SigningKey Current => ViewNow().Signing
        ?? throw new BrokerException(BrokerErrorKind.Unavailable, ViewNow().Problem ?? "No signing key is available.");

    public IReadOnlyList<SigningKey> Published => ViewNow().Published;

    public string? JwksJson => ViewNow().Jwks;

    /// <summary>Why this replica cannot sign right now (readiness), or null when it can.</summary>
    public string? Problem => ViewNow().Problem;

    public SigningKey? Find(string kid) => ViewNow().Published.FirstOrDefault(k => k.Kid == kid);

    /// <summary>Takes a schedule read from the store; an older version than the one held is ignored.</summary>
    public void Apply(KeySchedule schedule)
    {
        lock (_gate)
        {
            if (schedule.Version < _schedule.Version)
            {
                return;
            }

            Volatile.Write(ref _schedule, schedule);
            _view = null;
        }
    }

    /// <summary>The key file set changed (a reload found new files): recompute the view.</summary>
    public void Invalidate() => _view = null;

    private View ViewNow()
    {
        var now = time.GetUtcNow();
        var view = _view;
        if (view is null || now >= view.ValidUntil || now < view.ValidFrom)
        {
            lock (_gate)
            {
                view = Compute(_schedule, now);
                _view = view;
            }
        }

        return view;
    }

    private View Compute(KeySchedule schedule, DateTimeOffset now)
    {
        var validUntil = schedule.NextChangeAfter(now) ?? DateTimeOffset.MaxValue;
        if (schedule.Version == 0)
        {
            return new View(null, [], null, now, validUntil, "The signing key schedule has not been loaded from the store yet.");
        }

        // Key material comes only from the key files: the schedule (in the shared store) may say which
        // mounted kid signs and is published when, nothing more. An entry naming a kid this replica does
        // not hold is ignored — never published, never trusted for verification, never signing
        // (KeyRotation reports it loudly).
        var held = schedule with { Keys = schedule.Keys.Where(k => ring.Find(k.Kid) is not null).ToList() };
        var published = held.PublishedAt(now).Select(k => ring.Find(k.Kid)!).ToList();
        var active = held.SigningKeyAt(now);
        var signing = active is null ? null : ring.Find(active.Kid);
        var problem = signing is not null ? null
            : schedule.SigningKeyAt(now) is { } unheld
                ? $"Signing key {unheld.Kid} is scheduled to sign, but no mounted key file holds it on this replica; mount the same keys on every replica."
                : "The key schedule names no active signing key.";
        return new View(signing, published, Jwks.Write(published), now, validUntil, problem);
    }

    /// <summary>Kids the schedule still publishes or signs with that no key file on this replica holds (ignored; see <see cref="Compute"/>).</summary>
    public IReadOnlyList<string> UnheldScheduledKids()
    {
        var now = time.GetUtcNow();
        return Schedule.Keys.Where(k => k.PhaseAt(now) != KeyPhase.Removed && ring.Find(k.Kid) is null).Select(k => k.Kid).ToList();
    }

    private sealed record View(
        SigningKey? Signing, IReadOnlyList<SigningKey> Published, string? Jwks, DateTimeOffset ValidFrom, DateTimeOffset ValidUntil, string? Problem);
}
