using CredBroker.Core.Broker;

namespace CredBroker.Core.Tokens;

/// <summary>
/// The signing keys as the shared <see cref="KeySchedule"/> says they are right now: the active key
/// signs, published and retired keys are in the JWKS. The view is recomputed only when the clock
/// passes the schedule's next change, so the hot path is a field read.
/// </summary>
public sealed class RotatingSigningKeys(KeyRing ring, TimeProvider time) : ISigningKeys
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, SigningKey> _publicOnly = new(StringComparer.Ordinal);
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

        var published = schedule.PublishedAt(now).Select(k => ring.Find(k.Kid) ?? PublicOnly(k)).ToList();
        var active = schedule.SigningKeyAt(now);
        var signing = active is null ? null : ring.Find(active.Kid);
        var problem = active is null ? "The key schedule names no active signing key."
            : signing is null ? $"Signing key {active.Kid} is scheduled to sign, but no mounted key file holds it on this replica; mount the same keys on every replica."
            : null;
        return new View(signing, published, Jwks.Write(published), now, validUntil, problem);
    }

    private SigningKey PublicOnly(ScheduledKey key)
    {
        if (!_publicOnly.TryGetValue(key.Kid, out var verifier))
        {
            verifier = SigningKey.FromPublic(key.X, key.Y);
            _publicOnly[key.Kid] = verifier;
        }

        return verifier;
    }

    private sealed record View(
        SigningKey? Signing, IReadOnlyList<SigningKey> Published, string? Jwks, DateTimeOffset ValidFrom, DateTimeOffset ValidUntil, string? Problem);
}
