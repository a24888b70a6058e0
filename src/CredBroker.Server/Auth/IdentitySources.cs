using CredBroker.Core.Agents;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Server.Auth;

/// <summary>
/// The sources that vouch for agent workload identities: each trusted issuer of
/// <c>CredBroker:Identity:Issuers</c> (by its exact <c>iss</c>) and, with a client CA, SPIFFE ids of
/// client certificates (<c>mtls</c>). The policy file's <c>identities</c> are bound to one of them
/// (<c>issuer|subject</c>); a bare subject is accepted only while there is exactly one source, since it
/// would otherwise match the same subject from any of them.
/// </summary>
public sealed class IdentitySources
{
    private readonly List<string> _sources;

    public IdentitySources(IEnumerable<string> issuers, bool clientCertificates)
    {
        _sources = [.. issuers.Distinct(StringComparer.Ordinal)];
        if (clientCertificates)
        {
            _sources.Add(IdentityEntry.ClientCertificateSource);
        }
    }

    public IReadOnlyList<string> All => _sources;

    /// <summary>A bare subject is unambiguous only with one source.</summary>
    public bool AllowUnqualified => _sources.Count == 1;

    /// <summary>The agent id the policy binds to <paramref name="subject"/> from <paramref name="source"/>, or null.</summary>
    public string? Resolve(PolicyDocument policy, string source, string subject) =>
        policy.Agents.FindByIdentity(source, subject, AllowUnqualified)?.Id;

    /// <summary>Entries of the policy's <c>identities</c> that name no trusted source or are ambiguous, each naming the entry.</summary>
    public IReadOnlyList<PolicyError> Problems(PolicyDocument policy, string file)
    {
        var problems = new List<PolicyError>();
        foreach (var (identity, agent) in policy.Agents.Identities.OrderBy(i => i.Agent.Id, StringComparer.Ordinal).ThenBy(i => i.Identity, StringComparer.Ordinal))
        {
            var (source, subject) = IdentityEntry.Parse(identity);
            var field = $"agents[{agent.Id}].identities";
            if (source is null && !AllowUnqualified)
            {
                problems.Add(new PolicyError(file, 0, 0, field, _sources.Count == 0
                    ? $"'{identity}' cannot match: no identity source is trusted (CredBroker:Identity:Issuers, or client certificates with Listen:Tls:ClientCaFile)."
                    : $"'{identity}' names no issuer, but {_sources.Count} identity sources are trusted ({string.Join(", ", _sources)}): write it as '<issuer>|{identity}' so it matches that issuer's subject only."));
            }
            else if (source is not null && !_sources.Contains(source, StringComparer.Ordinal))
            {
                problems.Add(new PolicyError(file, 0, 0, field,
                    $"'{identity}' names '{source}', which is not a trusted identity source (one of: {string.Join(", ", _sources)}; '{IdentityEntry.ClientCertificateSource}' for client certificates)."));
            }
        }

        return problems;
    }

    /// <summary>The policy file loaded and checked against these sources (throws <see cref="PolicyFileException"/> naming every bad entry).</summary>
    public PolicyDocument Load(string file)
    {
        var policy = PolicyFile.Load(file);
        var problems = Problems(policy, file);
        return problems.Count == 0 ? policy : throw new PolicyFileException(problems);
    }
}
