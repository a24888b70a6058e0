using System.Collections.Concurrent;

namespace CredBroker.Server.Auth;

/// <summary>
/// Workload credentials that passed full validation, remembered until the moment validation would
/// stop accepting them (their <c>exp</c> plus the allowed clock skew), so a runtime that reuses its
/// credential on every call — as projected service-account tokens and JWT-SVIDs are meant to be
/// used — costs one signature verification per credential instead of one per call (an ES256
/// verify through IdentityModel costs several times the ES256 sign of the token being minted).
/// Keyed by the exact credential text, so only byte-identical credentials hit; failures are never
/// cached. A remembered answer outlives a key the issuer drops from its JWKS (until the credential's
/// own expiry, or its MaxCredentialAge). Bounded: when full, expired entries are purged,
/// and if it is still full the new credential is simply not remembered.
/// </summary>
public sealed class VerifiedCredentialCache(TimeProvider time, int capacity)
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _nextPurgeTicks;

    public int Count => _entries.Count;

    /// <summary>The caller a still-valid remembered credential authenticated as.</summary>
    public bool TryGet(string credential, out VerifiedCredential caller)
    {
        if (_entries.TryGetValue(credential, out var entry))
        {
            if (time.GetUtcNow() < entry.ValidUntil)
            {
                caller = entry.Caller;
                return true;
            }

            _entries.TryRemove(new KeyValuePair<string, Entry>(credential, entry));
        }

        caller = null!;
        return false;
    }

    /// <summary>Remembers a credential that validated, until <paramref name="validUntil"/> (exclusive).</summary>
    public void Add(string credential, VerifiedCredential caller, DateTimeOffset validUntil)
    {
        if (capacity <= 0 || validUntil <= time.GetUtcNow())
        {
            return;
        }

        if (_entries.Count >= capacity)
        {
            // A full cache is swept at most once a second, so a flood of new credentials cannot make every call scan it.
            var now = time.GetUtcNow();
            var next = Interlocked.Read(ref _nextPurgeTicks);
            if (now.UtcTicks < next || Interlocked.CompareExchange(ref _nextPurgeTicks, now.UtcTicks + TimeSpan.TicksPerSecond, next) != next)
            {
                return;
            }

            foreach (var (key, entry) in _entries)
            {
                if (entry.ValidUntil <= now)
                {
                    _entries.TryRemove(new KeyValuePair<string, Entry>(key, entry));
                }
            }

            if (_entries.Count >= capacity)
            {
                return;
            }
        }

        _entries[credential] = new Entry(caller, validUntil);
    }

    private sealed record Entry(VerifiedCredential Caller, DateTimeOffset ValidUntil);
}
