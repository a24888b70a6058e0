namespace CredBroker.Core.Audit;

/// <summary>What happened. Wire names (<see cref="AuditEventTypes.ToWire"/>) are stable: they are stored in the chain.</summary>
public enum AuditEventType
{
    TokenMinted,
    TokenDenied,
    ApprovalRequested,
    ApprovalDecided,
    ApprovalExpired,
    LeaseRenewed,
    LeaseCompleted,
    LeaseExpired,
    LeaseRevoked,
    AgentQuarantined,
    AgentReleased,
    PolicyReloaded,
    SigningKeyRotated,
    OperatorAuthFailed,
}

public static class AuditEventTypes
{
    private static readonly Dictionary<AuditEventType, string> Names = new()
    {
        [AuditEventType.TokenMinted] = "token.minted",
        [AuditEventType.TokenDenied] = "token.denied",
        [AuditEventType.ApprovalRequested] = "approval.requested",
        [AuditEventType.ApprovalDecided] = "approval.decided",
        [AuditEventType.ApprovalExpired] = "approval.expired",
        [AuditEventType.LeaseRenewed] = "lease.renewed",
        [AuditEventType.LeaseCompleted] = "lease.completed",
        [AuditEventType.LeaseExpired] = "lease.expired",
        [AuditEventType.LeaseRevoked] = "lease.revoked",
        [AuditEventType.AgentQuarantined] = "agent.quarantined",
        [AuditEventType.AgentReleased] = "agent.released",
        [AuditEventType.PolicyReloaded] = "policy.reloaded",
        [AuditEventType.SigningKeyRotated] = "signing_key.rotated",
        [AuditEventType.OperatorAuthFailed] = "operator.auth_failed",
    };

    private static readonly Dictionary<string, AuditEventType> ByName = Names.ToDictionary(p => p.Value, p => p.Key, StringComparer.Ordinal);

    public static IReadOnlyCollection<string> All => Names.Values;

    public static string ToWire(this AuditEventType type) => Names[type];

    public static bool TryParse(string name, out AuditEventType type) => ByName.TryGetValue(name, out type);
}
