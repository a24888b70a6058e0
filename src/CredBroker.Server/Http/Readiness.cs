using System.Text;
using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Server.Http;

/// <summary>
/// /readyz and the gRPC health service: ready only when a token could be issued right now — the
/// lease store and the audit log answer a real round trip, the current signing key signs, and a
/// policy (agent definitions) is loaded. Each check reports its own result.
/// </summary>
public sealed class Readiness(ILeaseStore store, IAuditLog audit, ISigningKeys keys, Func<AgentCatalog> agents)
{
    private static readonly byte[] Probe = Encoding.ASCII.GetBytes("credbroker readiness probe");

    public async Task<(bool Ready, IReadOnlyDictionary<string, string> Checks)> CheckAsync(CancellationToken cancellationToken)
    {
        // Both round trips at once: each is bounded by the Redis command timeout, so a stopped Redis
        // answers "not ready" within one timeout, not two.
        var store = StoreAsync(cancellationToken);
        var audit = AuditAsync(cancellationToken);
        var checks = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["lease_store"] = await store,
            ["audit_log"] = await audit,
            ["signing_key"] = SigningKey(),
            ["policy"] = agents().All.Count > 0 ? "ok" : "no agent definitions loaded",
        };
        return (checks.Values.All(v => v == "ok"), checks);
    }

    /// <summary>A real round trip to the store (an unknown, well-formed id), so a dead Redis shows as not ready.</summary>
    private async Task<string> StoreAsync(CancellationToken cancellationToken)
    {
        try
        {
            await store.GetAsync(LeaseIds.For("readiness-probe", "readiness-probe"), cancellationToken);
            return "ok";
        }
        catch (StoreUnavailableException e)
        {
            return "unreachable: " + e.Message;
        }
    }

    private async Task<string> AuditAsync(CancellationToken cancellationToken)
    {
        try
        {
            await audit.GetStateAsync(cancellationToken);
            return "ok";
        }
        catch (AuditUnavailableException e)
        {
            return "unreachable: " + e.Message;
        }
    }

    private string SigningKey()
    {
        try
        {
            var key = keys.Current;
            return key.Verify(Probe, key.Sign(Probe)) ? "ok" : "the current key does not verify its own signature";
        }
        catch (BrokerException e)
        {
            // No key to sign with right now (schedule not loaded yet, or the scheduled key is not mounted here).
            return "unavailable: " + e.Message;
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or InvalidOperationException or ObjectDisposedException)
        {
            return "unusable: " + e.GetType().Name;
        }
    }
}
