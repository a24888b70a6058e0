using System.Text.RegularExpressions;

namespace CredBroker.Server.Auth;

/// <summary>
/// A workload identity pattern such as <c>system:serviceaccount:agents:{name}</c> or
/// <c>spiffe://example.org/ns/agents/sa/{name}</c>, and the agent id it maps to (<c>{name}</c>, or a
/// literal). A placeholder matches one path segment (no ':' or '/'); everything else is literal.
/// </summary>
public sealed partial class SubjectPattern
{
    private readonly Regex? _regex;
    private readonly string _subject;
    private readonly string _agent;

    public SubjectPattern(string subject, string agent)
    {
        if (string.IsNullOrWhiteSpace(subject))
        {
            throw new InvalidOperationException("A workload mapping needs a Subject (an exact subject or a pattern with {placeholders}).");
        }

        _subject = subject;
        _agent = agent;
        var names = Placeholder().Matches(subject).Select(m => m.Groups[1].Value).ToList();
        if (names.Count > 0)
        {
            var pattern = "^" + string.Concat(Placeholder().Split(subject).Select((part, i) =>
                i % 2 == 0 ? Regex.Escape(part) : $"(?<{part}>[^:/]+)")) + "\\z";
            _regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50));
        }

        foreach (Match used in Placeholder().Matches(agent))
        {
            if (!names.Contains(used.Groups[1].Value))
            {
                throw new InvalidOperationException($"Workload mapping '{subject}' → '{agent}': the agent uses {{{used.Groups[1].Value}}}, which the subject does not define.");
            }
        }
    }

    public bool IsExact => _regex is null;

    /// <summary>The agent id for <paramref name="subject"/> ("" = a workload that is no agent), or null when the pattern does not match.</summary>
    public string? Match(string subject)
    {
        if (_regex is null)
        {
            return string.Equals(subject, _subject, StringComparison.Ordinal) ? _agent : null;
        }

        var match = _regex.Match(subject);
        return match.Success ? Placeholder().Replace(_agent, m => match.Groups[m.Groups[1].Value].Value) : null;
    }

    /// <summary>Exact subjects win over patterns; among patterns the first listed wins.</summary>
    public static string? Resolve(IReadOnlyList<SubjectPattern> patterns, string subject) =>
        patterns.Where(p => p.IsExact).Select(p => p.Match(subject)).FirstOrDefault(a => a is not null)
        ?? patterns.Where(p => !p.IsExact).Select(p => p.Match(subject)).FirstOrDefault(a => a is not null);

    [GeneratedRegex(@"\{([A-Za-z][A-Za-z0-9_]*)\}")]
    private static partial Regex Placeholder();
}
