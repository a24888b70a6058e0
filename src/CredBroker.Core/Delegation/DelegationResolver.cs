using System.Text.Json;
using CredBroker.Core.Agents;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Delegation;

/// <summary>
/// Turns a <c>subject_token</c> into a <see cref="DelegationPlan"/> and opens the delegated lease.
/// A token of this broker's own issuer is a parent token (sub-agent delegation): it must verify,
/// be unbound, carry the broker as audience (a delegation token from IssueToken, never a token for
/// an API), and belong to an active lease of another agent within the depth cap. Any other token
/// is a user token for <see cref="ISubjectTokenValidator"/>. Every refusal is PERMISSION_DENIED
/// (the caller is authenticated; the token it presents on someone's behalf is what is refused).
/// </summary>
public sealed class DelegationResolver(
    ISubjectTokenValidator users, TokenReader ownTokens, ILeaseStore store, IAgentCatalog agents, DelegationOptions options, TimeProvider time)
{
    public async Task<DelegationPlan> ResolveAsync(AgentDefinition agent, string subjectToken, CancellationToken cancellationToken)
    {
        if (subjectToken.Length == 0)
        {
            return DelegationPlan.None;
        }

        if (subjectToken.Length > Syntax.MaxTokenLength)
        {
            throw new BrokerException(BrokerErrorKind.InvalidArgument, $"subject_token is longer than {Syntax.MaxTokenLength} characters.");
        }

        return UnverifiedIssuer(subjectToken) == ownTokens.Issuer
            ? await FromParentTokenAsync(agent, subjectToken, cancellationToken)
            : await FromUserTokenAsync(subjectToken, cancellationToken);
    }

    /// <summary>
    /// Opens the lease through <paramref name="open"/>. A sub-agent lease is first registered as a
    /// child of its parent (refused unless the parent is active), and checked again after the open,
    /// so a parent ended meanwhile takes the new child with it.
    /// </summary>
    public async Task<LeaseOpenResult> OpenAsync(DelegationPlan plan, Lease lease, Func<Task<LeaseOpenResult>> open, CancellationToken cancellationToken)
    {
        if (plan.IsSubAgent)
        {
            var parentId = plan.ParentLeaseIds[0];
            var attached = await StoreCall.Run(() => store.AddChildAsync(parentId, lease.LeaseId, time.GetUtcNow(), cancellationToken));
            if (attached.Outcome != TransitionOutcome.Applied)
            {
                throw ParentNotActive(parentId, attached.Lease);
            }
        }

        var opened = await open();
        if (opened.Lease is not { } stored)
        {
            return opened;
        }

        if (!plan.Matches(stored))
        {
            throw new BrokerException(BrokerErrorKind.AlreadyExists,
                $"task_id '{stored.TaskId}' already has lease {stored.LeaseId} with another delegation (subject or parent lease); use a new task_id.");
        }

        if (plan.IsSubAgent && opened.Created)
        {
            var parent = await StoreCall.Run(() => store.GetAsync(plan.ParentLeaseIds[0], cancellationToken));
            if (parent is null || parent.StateAt(time.GetUtcNow()) != LeaseState.Active)
            {
                await StoreCall.Run(() => store.RevokeAsync(stored.LeaseId, $"parent lease {plan.ParentLeaseIds[0]} ended", DelegationCascade.Actor, time.GetUtcNow(), null, cancellationToken));
                throw ParentNotActive(plan.ParentLeaseIds[0], parent);
            }
        }

        return opened;
    }

    /// <summary>Introspection: true when every lease the token was delegated from is still active.</summary>
    public async Task<bool> AncestorsActiveAsync(IReadOnlyList<string> parentLeaseIds, CancellationToken cancellationToken)
    {
        foreach (var id in parentLeaseIds)
        {
            var parent = await StoreCall.Run(() => store.GetAsync(id, cancellationToken));
            if (parent is null || parent.StateAt(time.GetUtcNow()) != LeaseState.Active)
            {
                return false;
            }
        }

        return true;
    }

    private async Task<DelegationPlan> FromUserTokenAsync(string subjectToken, CancellationToken cancellationToken)
    {
        UserDelegation user;
        try
        {
            user = await users.ValidateAsync(subjectToken, cancellationToken);
        }
        catch (SubjectTokenRejectedException e)
        {
            throw new BrokerException(BrokerErrorKind.PermissionDenied, e.Message, [e.RuleId]);
        }

        return new DelegationPlan(user.Subject, user.Scopes, [], [], notAfter: null, audience: null);
    }

    private async Task<DelegationPlan> FromParentTokenAsync(AgentDefinition agent, string subjectToken, CancellationToken cancellationToken)
    {
        var claims = ownTokens.Read(subjectToken) ?? throw Denied("delegation.parent_token",
            "subject_token names this broker as issuer but is not a valid token of it (signature, lifetime or claims); present a current token of the parent lease.");
        if (claims.CertificateThumbprint is not null || claims.KeyThumbprint is not null)
        {
            throw Denied("delegation.parent_bound",
                $"subject_token is bound to the parent's {(claims.CertificateThumbprint is not null ? "client certificate (cnf.x5t#S256)" : "DPoP key (cnf.jkt)")}; a sender-constrained token cannot be presented by another workload.");
        }

        var parent = await StoreCall.Run(() => store.GetAsync(claims.LeaseId, cancellationToken));
        if (parent is not null && parent.AgentId != claims.ClientId)
        {
            throw Denied("delegation.parent_token", "subject_token's client_id does not own the lease it names; present a token the broker minted for the parent lease.");
        }

        if (parent is null || parent.StateAt(time.GetUtcNow()) != LeaseState.Active)
        {
            throw ParentNotActive(claims.LeaseId, parent);
        }

        if (parent.AgentId == agent.Id)
        {
            throw Denied("delegation.parent_self",
                $"subject_token belongs to agent '{agent.Id}' itself; use IssueToken on lease {parent.LeaseId} instead of delegating to yourself.");
        }

        // A parent token must be meant for the broker: a token for an API (which that API received and
        // could replay) is not a delegation. The parent asks for one with IssueToken(audience = the broker).
        if (claims.Audience != ownTokens.Issuer)
        {
            throw Denied("delegation.parent_audience",
                $"subject_token is a token for '{Clip(claims.Audience)}', not a delegation token for this broker: a parent lease delegates with a token " +
                $"whose audience is the broker ('{ownTokens.Issuer}'), from IssueToken(lease_id, audience: '{ownTokens.Issuer}'). Tokens for APIs are never accepted as parent tokens.");
        }

        if (parent.ParentLeaseIds.Count + 1 > options.MaxDepth)
        {
            throw Denied("delegation.depth",
                $"Delegation chain too deep: the parent lease is already {parent.ParentLeaseIds.Count} level(s) below its root, and this broker allows at most {options.MaxDepth}.");
        }

        var scopes = claims.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var parentAudiences = agents.Find(parent.AgentId)?.Audiences ?? [];
        return new DelegationPlan(
            parent.Subject ?? parent.AgentId, scopes, [parent.AgentId, .. parent.Actors], [parent.LeaseId, .. parent.ParentLeaseIds],
            claims.ExpiresAt, (parent.Audience, parentAudiences));
    }

    /// <summary>Reads <c>iss</c> without verifying anything, only to route the token to the right verifier.</summary>
    private static string? UnverifiedIssuer(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3 || Base64Url.TryDecode(parts[1]) is not { } payload)
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(payload);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("iss", out var iss)
                && iss.ValueKind == JsonValueKind.String ? iss.GetString() : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not JSON, or a string JsonElement cannot represent (a lone surrogate escape): not routed as ours.
            return null;
        }
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";

    private BrokerException ParentNotActive(string parentId, Lease? parent) => Denied("delegation.parent_lease",
        $"The parent lease {parentId} of subject_token is {parent?.StateAt(time.GetUtcNow()).ToWire() ?? "unknown"}, not active; a sub-agent can only derive from an active lease.");

    private static BrokerException Denied(string rule, string message) => new(BrokerErrorKind.PermissionDenied, message, [rule]);
}
