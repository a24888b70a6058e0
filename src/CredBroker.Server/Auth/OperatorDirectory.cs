using CredBroker.Server.Hosting;

namespace CredBroker.Server.Auth;

/// <summary>What an operator may do. Revokers and approvers can also read; admins can do everything.</summary>
public enum OperatorRole
{
    Viewer,
    Revoker,
    Approver,
    Admin,
}

/// <summary>
/// Who is an operator and with which roles: by subject or by a group in the credential's group claim,
/// each bound to the operator issuer that vouches for it, or by the SPIFFE id of a client certificate.
/// Used on the operator listener to grant roles and on the agent listener to refuse operator credentials.
/// A subject or group grant names its issuer (<c>Issuer</c>, or <c>issuer|subject</c> in
/// <c>Operators:Subjects</c>); it may leave it out only while exactly one operator issuer is trusted,
/// else the start is refused naming the entry (the same subject from another issuer is someone else).
/// </summary>
public sealed class OperatorDirectory
{
    private readonly List<Grant> _grants = [];

    public OperatorDirectory(BrokerOptions.OperatorOptions options)
    {
        var issuers = options.Issuers.Select(i => i.Issuer).Distinct(StringComparer.Ordinal).ToList();

        // Operators:Subjects (the first configuration form) are full operators.
        for (var i = 0; i < options.Subjects.Count; i++)
        {
            var (issuer, subject) = Core.Agents.IdentityEntry.Parse(options.Subjects[i]);
            Add($"CredBroker:Operators:Subjects:{i}", new BrokerOptions.OperatorGrant { Issuer = issuer, Subject = subject, Roles = [nameof(OperatorRole.Admin)] }, issuers);
        }

        for (var i = 0; i < options.Grants.Count; i++)
        {
            Add($"CredBroker:Operators:Grants:{i}", options.Grants[i], issuers);
        }

        GroupClaim = options.GroupClaim;
    }

    public string GroupClaim { get; }

    public bool HasCertificateGrants => _grants.Any(g => g.Certificate is not null);

    /// <summary>The roles granted to a credential from <paramref name="issuer"/> (subject, groups) or to a client certificate's SPIFFE id.</summary>
    public IReadOnlySet<OperatorRole> RolesFor(string? issuer, string? subject, IReadOnlyCollection<string> groups, string? certificateId)
    {
        var roles = new HashSet<OperatorRole>();
        foreach (var grant in _grants)
        {
            var fromIssuer = issuer is not null && string.Equals(grant.Issuer, issuer, StringComparison.Ordinal);
            var matches = (fromIssuer && grant.Subject is { } s && string.Equals(s, subject, StringComparison.Ordinal))
                || (fromIssuer && grant.Group is { } g && groups.Contains(g))
                || (grant.Certificate is { } c && string.Equals(c, certificateId, StringComparison.Ordinal));
            if (matches)
            {
                roles.UnionWith(grant.Roles);
            }
        }

        return roles;
    }

    private void Add(string key, BrokerOptions.OperatorGrant grant, List<string> issuers)
    {
        var named = new[] { grant.Subject, grant.Group, grant.Certificate }.Count(v => !string.IsNullOrEmpty(v));
        if (named != 1)
        {
            throw new InvalidOperationException($"{key} names exactly one of Subject, Group or Certificate.");
        }

        var who = grant.Subject ?? grant.Group ?? grant.Certificate;
        if (grant.Roles.Count == 0 || grant.Roles.Any(r => !Enum.TryParse<OperatorRole>(r, ignoreCase: true, out _)))
        {
            throw new InvalidOperationException(
                $"{key} ('{who}'): Roles must list some of {string.Join(", ", Enum.GetNames<OperatorRole>())}.");
        }

        var roles = grant.Roles.Select(r => Enum.Parse<OperatorRole>(r, ignoreCase: true)).ToHashSet();
        if (!string.IsNullOrEmpty(grant.Certificate))
        {
            if (!string.IsNullOrEmpty(grant.Issuer))
            {
                throw new InvalidOperationException($"{key} ('{who}'): a Certificate grant names no Issuer (client certificates chain to Listen:Tls:ClientCaFile).");
            }

            _grants.Add(new Grant(null, null, null, grant.Certificate, roles));
            return;
        }

        var issuer = grant.Issuer;
        if (string.IsNullOrEmpty(issuer))
        {
            if (issuers.Count > 1)
            {
                throw new InvalidOperationException(
                    $"{key} ('{who}') names no issuer, but {issuers.Count} operator issuers are trusted ({string.Join(", ", issuers)}): "
                    + "set its Issuer (or write a subject as 'issuer|subject') so only that issuer's credential gets the roles.");
            }

            issuer = issuers.FirstOrDefault();
        }
        else if (!issuers.Contains(issuer, StringComparer.Ordinal))
        {
            throw new InvalidOperationException(
                $"{key} ('{who}') names issuer '{issuer}', which is not in CredBroker:Operators:Issuers ({string.Join(", ", issuers)}).");
        }

        _grants.Add(new Grant(issuer, NullIfEmpty(grant.Subject), NullIfEmpty(grant.Group), null, roles));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>One grant; <see cref="Issuer"/> is null for certificates (and for subjects/groups when no operator issuer is trusted: they match nothing).</summary>
    private sealed record Grant(string? Issuer, string? Subject, string? Group, string? Certificate, IReadOnlySet<OperatorRole> Roles);
}

/// <summary>The role each Operator RPC needs. A method not listed needs admin (new RPCs are closed until classified).</summary>
public static class OperatorPermissions
{
    private static readonly Dictionary<string, OperatorRole> Required = new(StringComparer.Ordinal)
    {
        ["ListLeases"] = OperatorRole.Viewer,
        ["GetLease"] = OperatorRole.Viewer,
        ["ListApprovals"] = OperatorRole.Viewer,
        ["QueryAudit"] = OperatorRole.Viewer,
        ["VerifyAudit"] = OperatorRole.Viewer,
        ["AnalyzePolicy"] = OperatorRole.Viewer,
        ["ExplainDecision"] = OperatorRole.Viewer,
        ["RevokeLease"] = OperatorRole.Revoker,
        ["RevokeTask"] = OperatorRole.Revoker,
        ["QuarantineAgent"] = OperatorRole.Revoker,
        ["ReleaseAgent"] = OperatorRole.Revoker,
        ["DecideApproval"] = OperatorRole.Approver,
        ["ReloadPolicy"] = OperatorRole.Admin,
        ["RotateSigningKey"] = OperatorRole.Admin,
    };

    /// <summary>The role <paramref name="method"/> (the RPC name, without service) requires.</summary>
    public static OperatorRole RequiredRole(string method) => Required.GetValueOrDefault(method, OperatorRole.Admin);

    public static bool Allows(IReadOnlySet<OperatorRole> roles, OperatorRole required) =>
        roles.Contains(OperatorRole.Admin) || roles.Contains(required)
        || (required == OperatorRole.Viewer && (roles.Contains(OperatorRole.Revoker) || roles.Contains(OperatorRole.Approver)));
}
