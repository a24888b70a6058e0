using CredBroker.Core.Broker;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Delegation;

/// <summary>
/// What a validated <c>subject_token</c> allows and how it shapes the new lease: delegation never
/// widens. A user delegation bounds the scopes by what the user delegated; a sub-agent delegation
/// bounds scopes, audience and deadline by the parent token and chains the parent's lease.
/// <see cref="None"/> (no subject token) changes nothing.
/// </summary>
public sealed class DelegationPlan
{
    public static DelegationPlan None { get; } = new(null, null, [], [], null, null);

    private readonly IReadOnlySet<string>? _allowedScopes;
    private readonly DateTimeOffset? _notAfter;
    private readonly (string Audience, IReadOnlyList<string> ParentAgentAudiences)? _audience;

    internal DelegationPlan(
        string? subject, IReadOnlySet<string>? allowedScopes, IReadOnlyList<string> actors, IReadOnlyList<string> parentLeaseIds,
        DateTimeOffset? notAfter, (string Audience, IReadOnlyList<string> ParentAgentAudiences)? audience)
    {
        Subject = subject;
        _allowedScopes = allowedScopes;
        Actors = actors;
        ParentLeaseIds = parentLeaseIds;
        _notAfter = notAfter;
        _audience = audience;
    }

    /// <summary>The principal the lease acts for (the user, or the parent token's <c>sub</c>); null for <see cref="None"/>.</summary>
    public string? Subject { get; }

    public IReadOnlyList<string> Actors { get; }

    public IReadOnlyList<string> ParentLeaseIds { get; }

    public bool IsSubAgent => ParentLeaseIds.Count > 0;

    /// <summary>
    /// Checks the request against what was delegated, before policy runs: every requested scope was
    /// delegated, the requested ttl ends by the parent token's <c>exp</c>, and the audience is the
    /// parent's (the default) or one the parent agent could use itself. Returns the request with
    /// the audience filled in for policy.
    /// </summary>
    public BeginTaskCommand Narrow(BeginTaskCommand command, DateTimeOffset now)
    {
        if (Subject is null)
        {
            return command;
        }

        var rule = IsSubAgent ? "delegation.parent_scope" : "delegation.user_scope";
        if (command.Scopes.FirstOrDefault(s => !_allowedScopes!.Contains(s)) is { } extra)
        {
            var source = IsSubAgent ? "the parent token (subject_token)" : $"user '{Subject}'";
            throw new BrokerException(BrokerErrorKind.PermissionDenied,
                $"Scope '{extra}' was not delegated by {source}, which delegated: {string.Join(' ', _allowedScopes!.Order(StringComparer.Ordinal))}. " +
                "Delegation never widens: request only delegated scopes.", [rule]);
        }

        if (_notAfter is { } notAfter && command.Ttl is { } ttl && now + ttl > notAfter)
        {
            throw new BrokerException(BrokerErrorKind.PermissionDenied,
                $"ttl {ttl.TotalSeconds:0} s would outlive the parent token, which expires at {notAfter:O}; a sub-agent's lease ends by then. " +
                $"Request at most {Math.Max(0, (notAfter - now).TotalSeconds):0} s or omit ttl.", ["delegation.parent_ttl"]);
        }

        if (_audience is not { } parent)
        {
            return command;
        }

        var audience = command.Audience.Length == 0 ? parent.Audience : command.Audience;
        if (audience != parent.Audience && !parent.ParentAgentAudiences.Contains(audience, StringComparer.Ordinal))
        {
            throw new BrokerException(BrokerErrorKind.PermissionDenied,
                $"Audience '{audience}' is neither the parent token's audience '{parent.Audience}' nor one the parent agent may use; " +
                "a sub-agent's token stays within the parent's audiences.", ["delegation.parent_audience"]);
        }

        return command with { Audience = audience };
    }

    /// <summary>
    /// The lease as delegated: scopes are the intersection of the policy grant and what was
    /// delegated, a sub-agent's deadlines end by the parent token's <c>exp</c>, and the chain is recorded.
    /// </summary>
    public Lease Shape(Lease lease)
    {
        if (Subject is null)
        {
            return lease;
        }

        var shaped = lease with
        {
            Scopes = lease.Scopes.Where(_allowedScopes!.Contains).ToList(),
            Subject = Subject,
            Actors = Actors,
            ParentLeaseIds = ParentLeaseIds,
        };
        return _notAfter is { } notAfter
            ? shaped with { Deadline = Min(shaped.Deadline, notAfter), MaxDeadline = Min(shaped.MaxDeadline, notAfter) }
            : shaped;
    }

    /// <summary>A replayed BeginTask must come with the same delegation as the lease it found.</summary>
    internal bool Matches(Lease existing) =>
        existing.Subject == Subject && existing.ParentLeaseIds.SequenceEqual(ParentLeaseIds, StringComparer.Ordinal);

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
