using System.Globalization;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Broker;

/// <summary>The audit events of operator actions.</summary>
public sealed partial class LeaseAdministration
{
    private AuditEvent Revoked(Lease lease, string reason, string actor, bool changed) =>
        AuditEvent.ForLease(AuditEventType.LeaseRevoked, lease, time.GetUtcNow()) with
        {
            Operator = actor,
            Reason = reason,
            Details = new Dictionary<string, string> { ["changed"] = changed ? "true" : "false", ["state"] = lease.State.ToWire() },
        };

    /// <param name="count">Quarantine: leases revoked by this call; release: 1 when the agent was quarantined.</param>
    private AuditEvent AgentEvent(AuditEventType type, string agentId, string actor, string reason, int count) => new()
    {
        Type = type,
        Time = time.GetUtcNow(),
        AgentId = agentId,
        Operator = actor,
        Reason = reason,
        Details = new Dictionary<string, string>
        {
            [type == AuditEventType.AgentQuarantined ? "leases_revoked" : "changed"] =
                type == AuditEventType.AgentQuarantined ? count.ToString(CultureInfo.InvariantCulture) : (count > 0 ? "true" : "false"),
        },
    };
}
