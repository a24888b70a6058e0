using CredBroker.Core.Agents;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Broker;

/// <summary>
/// Sender-constrained tokens: a DPoP-bound lease (opened with a proof) keeps its key, so IssueToken and
/// RenewLease need a proof by that key; and policy (<c>sender_constrained</c>) can require that an
/// agent's tokens, or tokens carrying some scopes, are bound to an mTLS certificate or a DPoP key.
/// </summary>
public sealed partial class TaskBroker
{
    /// <summary>The ErrorInfo reason when a DPoP-bound lease is used without a proof.</summary>
    public const string DpopMissingReason = "DPOP_MISSING";

    /// <summary>The ErrorInfo reason when a DPoP-bound lease is used with a proof by another key.</summary>
    public const string DpopBindingReason = "DPOP_BINDING";

    /// <summary>The ErrorInfo reason when policy requires a sender-constrained token and the caller offered no binding.</summary>
    public const string SenderConstraintReason = "SENDER_CONSTRAINT_REQUIRED";

    /// <summary>A DPoP-bound lease answers only to a proof by its key (UNAUTHENTICATED otherwise).</summary>
    private static void RequireLeaseKey(CallerIdentity caller, Lease lease)
    {
        if (lease.DpopKeyThumbprint is not { } bound)
        {
            return;
        }

        if (caller.DpopKeyThumbprint is not { } offered)
        {
            throw new BrokerException(BrokerErrorKind.Unauthenticated,
                $"Lease {lease.LeaseId} is DPoP-bound: send a DPoP proof (RFC 9449) signed by the lease's key in the 'dpop' metadata.")
            {
                Reason = DpopMissingReason,
            };
        }

        if (!string.Equals(bound, offered, StringComparison.Ordinal))
        {
            throw new BrokerException(BrokerErrorKind.Unauthenticated,
                $"Lease {lease.LeaseId} is bound to another DPoP key (jkt {bound}); the proof was signed by jkt {offered}.")
            {
                Reason = DpopBindingReason,
            };
        }
    }

    /// <summary>The policy refusal when <paramref name="scopes"/> need a sender-constrained token and neither the caller nor the lease binds one; else null.</summary>
    private static BrokerException? SenderConstraintRefusal(CallerIdentity caller, AgentDefinition agent, IReadOnlyList<string> scopes, Lease? lease)
    {
        if (caller.IsSenderConstrained || lease?.DpopKeyThumbprint is not null || agent.SenderConstraintFor(scopes) is not { } scope)
        {
            return null;
        }

        var what = scope == "*" ? $"Agent '{agent.Id}' gets only sender-constrained tokens" : $"Tokens carrying scope '{scope}' must be sender-constrained";
        return new BrokerException(BrokerErrorKind.PermissionDenied,
            $"{what} (policy sender_constrained): call over mTLS with the agent's client certificate, or send a DPoP proof (RFC 9449) in the 'dpop' metadata.",
            ["agent.sender_constrained"])
        {
            Reason = SenderConstraintReason,
        };
    }
}
