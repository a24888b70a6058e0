using System.Collections.Concurrent;

namespace CredBroker.Validation;

/// <summary>
/// In-memory revocation state, fed from the broker's revocation feed: revoked leases and agent
/// epochs (quarantine: the agent's tokens issued before the epoch are revoked). Thread-safe.
/// </summary>
/// <remarks>
/// Bounded by <see cref="Prune"/>, which callers run periodically: a lease entry is dropped once its
/// <c>notAfter</c> (the last <c>exp</c> of its tokens) plus the clock skew has passed, because the
/// validator then rejects those tokens as expired anyway; an agent epoch is dropped once every token
/// issued before it is past <c>MaxTokenLifetime</c> + skew. So the list holds at most the leases
/// revoked within one token lifetime, plus one epoch per agent quarantined within that window.
/// An agent epoch only moves forward: quarantine events have no release event.
/// </remarks>
/// <param name="clockSkew">The validator's <see cref="TokenValidationOptions.MaxClockSkew"/>.</param>
/// <param name="maxTokenLifetime">The validator's <see cref="TokenValidationOptions.MaxTokenLifetime"/>.</param>
public sealed class DenyList(TimeSpan clockSkew, TimeSpan maxTokenLifetime) : IRevocationState
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _leases = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _agentEpochs = new(StringComparer.Ordinal);

    /// <summary>A deny list for the default options (60 s skew, 1 h token lifetime).</summary>
    public DenyList()
        : this(TimeSpan.FromSeconds(60), TimeSpan.FromHours(1))
    {
    }

    /// <summary>Revoked leases currently held.</summary>
    public int LeaseCount => _leases.Count;

    /// <summary>Agent epochs currently held.</summary>
    public int AgentCount => _agentEpochs.Count;

    /// <summary>Revokes every token of <paramref name="leaseId"/>; the entry is kept until <paramref name="notAfter"/> (+ skew).</summary>
    public void RevokeLease(string leaseId, DateTimeOffset notAfter)
    {
        ArgumentException.ThrowIfNullOrEmpty(leaseId);
        _leases.AddOrUpdate(leaseId, notAfter, (_, existing) => existing > notAfter ? existing : notAfter);
    }

    /// <summary>Revokes the agent's tokens issued before <paramref name="since"/>. A later epoch wins over an earlier one.</summary>
    public void QuarantineAgent(string agentId, DateTimeOffset since)
    {
        ArgumentException.ThrowIfNullOrEmpty(agentId);
        _agentEpochs.AddOrUpdate(agentId, since, (_, existing) => existing > since ? existing : since);
    }

    /// <inheritdoc />
    public bool IsRevoked(string leaseId, string agentId, DateTimeOffset issuedAt) =>
        _leases.ContainsKey(leaseId)
        || (_agentEpochs.TryGetValue(agentId, out var epoch) && issuedAt < epoch);

    /// <summary>Drops entries that can no longer matter at <paramref name="now"/> (see the remarks on bounds).</summary>
    public void Prune(DateTimeOffset now)
    {
        foreach (var (leaseId, notAfter) in _leases)
        {
            if (notAfter + clockSkew < now)
            {
                _leases.TryRemove(new KeyValuePair<string, DateTimeOffset>(leaseId, notAfter));
            }
        }

        foreach (var (agentId, epoch) in _agentEpochs)
        {
            if (epoch + maxTokenLifetime + clockSkew < now)
            {
                _agentEpochs.TryRemove(new KeyValuePair<string, DateTimeOffset>(agentId, epoch));
            }
        }
    }
}
