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
/// Who is an operator and with which roles: by subject, by a group in the credential's group claim,
/// or by the SPIFFE id of a client certificate. Used on the operator listener to grant roles and on
/// the agent listener to refuse operator credentials.
/// </summary>
public sealed class OperatorDirectory
{
    private readonly List<BrokerOptions.OperatorGrant> _grants;

    public OperatorDirectory(BrokerOptions.OperatorOptions options)
    {
        // Operators:Subjects (the first configuration form) are full operators.
        _grants = [.. options.Subjects.Select(s => new BrokerOptions.OperatorGrant { Subject = s, Roles = [nameof(OperatorRole.Admin)] }), .. options.Grants];
        foreach (var grant in _grants)
        {
            if (new[] { grant.Subject, grant.Group, grant.Certificate }.Count(v => !string.IsNullOrEmpty(v)) != 1)
            {
                throw new InvalidOperationException("Each CredBroker:Operators:Grants entry names exactly one of Subject, Group or Certificate.");
            }

            if (grant.Roles.Count == 0 || grant.Roles.Any(r => !Enum.TryParse<OperatorRole>(r, ignoreCase: true, out _)))
            {
                throw new InvalidOperationException(
                    $"Operator grant for '{grant.Subject ?? grant.Group ?? grant.Certificate}': Roles must list some of {string.Join(", ", Enum.GetNames<OperatorRole>())}.");
            }
        }

        GroupClaim = options.GroupClaim;
    }

    public string GroupClaim { get; }

    public bool HasCertificateGrants => _grants.Any(g => !string.IsNullOrEmpty(g.Certificate));

    public IReadOnlySet<OperatorRole> RolesFor(string? subject, IReadOnlyCollection<string> groups, string? certificateId)
    {
        var roles = new HashSet<OperatorRole>();
        foreach (var grant in _grants)
        {
            var matches = (grant.Subject is { Length: > 0 } s && s == subject)
                || (grant.Group is { Length: > 0 } g && groups.Contains(g))
                || (grant.Certificate is { Length: > 0 } c && c == certificateId);
            if (matches)
            {
                roles.UnionWith(grant.Roles.Select(r => Enum.Parse<OperatorRole>(r, ignoreCase: true)));
            }
        }

        return roles;
    }
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
