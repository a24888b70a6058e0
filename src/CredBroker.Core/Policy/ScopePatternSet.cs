namespace CredBroker.Core.Policy;

/// <summary>
/// A set of scope patterns compiled for request-time matching: concrete scopes in a hash set
/// (one lookup), wildcard patterns in a short list, so a decision costs O(requested scopes).
/// </summary>
public sealed class ScopePatternSet
{
    private readonly HashSet<string> _concrete = new(StringComparer.Ordinal);
    private readonly ScopePattern[] _wildcards;

    public ScopePatternSet(IEnumerable<ScopePattern> patterns)
    {
        Patterns = patterns.Distinct().ToList();
        foreach (var pattern in Patterns.Where(p => p.IsConcrete))
        {
            _concrete.Add(pattern.Text);
        }

        _wildcards = Patterns.Where(p => !p.IsConcrete).ToArray();
    }

    public static ScopePatternSet Empty { get; } = new([]);

    public IReadOnlyList<ScopePattern> Patterns { get; }

    public int Count => Patterns.Count;

    public static ScopePatternSet Of(IEnumerable<string> patterns) => new(patterns.Select(ScopePattern.Parse));

    public bool Matches(string scope)
    {
        if (_concrete.Contains(scope))
        {
            return true;
        }

        foreach (var pattern in _wildcards)
        {
            if (pattern.Matches(scope))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The first pattern matching <paramref name="scope"/>, for explanations.</summary>
    public ScopePattern? FirstMatch(string scope) =>
        _concrete.Contains(scope) ? Patterns.First(p => p.Text == scope) : _wildcards.FirstOrDefault(p => p.Matches(scope));

    public bool Overlaps(ScopePattern pattern) => Patterns.Any(p => p.Overlaps(pattern));

    public override string ToString() => string.Join(", ", Patterns.Select(p => p.Text));
}
