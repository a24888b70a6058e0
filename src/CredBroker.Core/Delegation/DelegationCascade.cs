using CredBroker.Core.Broker;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Delegation;

/// <summary>
/// When a lease ends (completed or revoked), every lease delegated from it, directly or further down
/// the chain, is revoked. Idempotent, so it is run again on a repeated complete/revoke and so heals a
/// cascade cut short by a crash. Expiry needs no cascade: a child's deadline never passes its parent
/// token's <c>exp</c>, which never passes the parent lease's deadline. Validators do not depend on
/// the cascade either: a token carries its ancestors' lease ids and is rejected once any is revoked.
/// </summary>
public sealed class DelegationCascade(ILeaseStore store, TimeProvider time)
{
    /// <summary>The actor recorded on cascaded revocations.</summary>
    public const string Actor = "credbroker:delegation";

    /// <summary>
    /// Revokes the open descendants of <paramref name="ended"/>; returns how many this call revoked.
    /// <paramref name="children"/> are <paramref name="ended"/>'s children when the store returned them
    /// with the transition (null = read them): a lease without children then costs no store call.
    /// </summary>
    public async Task<int> EndDescendantsAsync(Lease ended, IReadOnlyList<string>? children, CancellationToken cancellationToken)
    {
        if (!ended.IsTerminal)
        {
            return 0;
        }

        var revoked = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal) { ended.LeaseId };
        var pending = new Queue<(string LeaseId, string Why, IReadOnlyList<string>? Children)>();
        pending.Enqueue((ended.LeaseId, ended.State.ToWire(), children));
        while (pending.TryDequeue(out var parent))
        {
            var known = parent.Children ?? await StoreCall.Run(() => store.GetChildrenAsync(parent.LeaseId, cancellationToken));
            foreach (var child in known.Where(seen.Add))
            {
                var result = await StoreCall.Run(() => store.RevokeAsync(
                    child, $"parent lease {parent.LeaseId} was {parent.Why}", Actor, time.GetUtcNow(), expectedGeneration: null, cancellationToken));
                revoked += result.Outcome == TransitionOutcome.Applied ? 1 : 0;
                if (result.Outcome != TransitionOutcome.NotFound)
                {
                    pending.Enqueue((child, "revoked", result.Children));
                }
            }
        }

        return revoked;
    }
}
