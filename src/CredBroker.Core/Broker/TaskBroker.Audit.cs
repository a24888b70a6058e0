using System.Globalization;
using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Broker;

/// <summary>The audit events of <see cref="TaskBroker"/>'s outcomes (kept apart so the use cases read as a straight line).</summary>
public sealed partial class TaskBroker
{
    /// <summary>Records a refusal of BeginTask and hands it back to throw; if the audit is down the caller gets UNAVAILABLE instead.</summary>
    private async Task<BrokerException> DeniedAsync(CallerIdentity caller, AgentDefinition? agent, BeginTaskCommand command, BrokerException refusal, CancellationToken cancellationToken)
    {
        await audit.RaiseAsync(new AuditEvent
        {
            Type = AuditEventType.TokenDenied,
            Time = time.GetUtcNow(),
            AgentId = caller.AgentId,
            Owner = agent?.Owner ?? "",
            TaskId = command.TaskId,
            LeaseId = LeaseIds.For(caller.AgentId, command.TaskId),
            Audience = command.Audience,
            ScopesRequested = command.Scopes,
            RuleIds = refusal.RuleIds,
            Caller = Who(caller),
            Reason = refusal.Message,
            Details = new Dictionary<string, string> { ["operation"] = "begin_task", ["refusal"] = refusal.Kind.ToString() },
        }, cancellationToken);
        return refusal;
    }

    /// <summary>Records a refusal of IssueToken inside an existing lease.</summary>
    private async Task<BrokerException> DeniedAsync(CallerIdentity caller, Lease lease, IReadOnlyList<string> requested, BrokerException refusal, CancellationToken cancellationToken)
    {
        await audit.RaiseAsync(LeaseEvent(AuditEventType.TokenDenied, caller, lease) with
        {
            ScopesRequested = requested,
            ScopesGranted = [],
            RuleIds = refusal.RuleIds,
            Reason = refusal.Message,
            Details = new Dictionary<string, string> { ["operation"] = "issue_token", ["refusal"] = refusal.Kind.ToString() },
        }, cancellationToken);
        return refusal;
    }

    private AuditEvent Renewed(CallerIdentity caller, Lease lease, MintedToken token) =>
        LeaseEvent(AuditEventType.LeaseRenewed, caller, lease) with
        {
            ScopesGranted = token.Scopes,
            Details = new Dictionary<string, string>(TokenDetails(token, "renew_lease"))
            {
                ["deadline"] = lease.Deadline.ToString("O", CultureInfo.InvariantCulture),
            },
        };

    private AuditEvent Completed(CallerIdentity caller, Lease lease, bool changed) =>
        LeaseEvent(AuditEventType.LeaseCompleted, caller, lease) with
        {
            Details = new Dictionary<string, string> { ["state"] = lease.State.ToWire(), ["changed"] = changed ? "true" : "false" },
        };

    private AuditEvent LeaseEvent(AuditEventType type, CallerIdentity caller, Lease lease) =>
        AuditEvent.ForLease(type, lease, time.GetUtcNow()) with { Caller = Who(caller) };

    /// <summary>The token's id and lifetime, never the token.</summary>
    internal static Dictionary<string, string> TokenDetails(MintedToken token, string operation) => new()
    {
        ["operation"] = operation,
        ["jti"] = token.TokenId,
        ["iat"] = token.IssuedAt.ToString("O", CultureInfo.InvariantCulture),
        ["exp"] = token.ExpiresAt.ToString("O", CultureInfo.InvariantCulture),
    };

    internal static string Who(CallerIdentity caller) => $"{caller.AgentId} ({caller.AuthenticationMethod})";
}
