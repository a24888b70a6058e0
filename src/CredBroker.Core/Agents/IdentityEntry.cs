namespace CredBroker.Core.Agents;

/// <summary>
/// A workload identity as the policy file's <c>identities</c> name it: <c>issuer|subject</c>, bound to
/// the trusted source that vouches for the subject (an issuer's exact <c>iss</c>, or
/// <see cref="ClientCertificateSource"/> for SPIFFE ids of client certificates), or a bare
/// <c>subject</c>, which the host accepts only while it trusts a single source (else it is ambiguous).
/// </summary>
public static class IdentityEntry
{
    public const char Separator = '|';

    /// <summary>The source name of SPIFFE ids from client certificates (mTLS).</summary>
    public const string ClientCertificateSource = "mtls";

    /// <summary>Splits an entry at its first '|': the source (null when unqualified) and the subject.</summary>
    public static (string? Source, string Subject) Parse(string entry)
    {
        var at = entry.IndexOf(Separator, StringComparison.Ordinal);
        return at < 0 ? (null, entry) : (entry[..at], entry[(at + 1)..]);
    }

    public static string Qualified(string source, string subject) => source + Separator + subject;

    /// <summary>What is wrong with an entry's syntax, or null.</summary>
    public static string? SyntaxProblem(string entry)
    {
        var (source, subject) = Parse(entry);
        if (subject.Length == 0 || (source is not null && source.Length == 0))
        {
            return $"'{entry}' must be a subject or 'issuer|subject' with both parts non-empty.";
        }

        return entry.Any(char.IsControl) ? $"'{entry.Replace("\n", "\\n", StringComparison.Ordinal)}' contains control characters." : null;
    }
}
