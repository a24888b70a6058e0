namespace CredBroker.Core.Policy;

/// <summary>
/// A set of scope patterns compiled for request-time matching: concrete scopes in a hash set
/// (one lookup), wildcard patterns in a short list, so a decision costs O(requested scopes).
/// </summary>
public sealed class ScopePatternSet
{
    private readonly HashSet<string> _concrete = new(StringComparer.Ordinal);
    private readonly ScopePattern[] _wildcards;

    // Wildcard patterns by their literal first segment, so a scope is only tried against its own family.
    private readonly Dictionary<string, ScopePattern[]> _byHead;
    private readonly Dictionary<string, ScopePattern[]>.AlternateLookup<ReadOnlySpan<char>> _byHeadSpan;
    private readonly ScopePattern[] _headless;

    public ScopePatternSet(IEnumerable<ScopePattern> patterns)
    {
        Patterns = patterns.Distinct().ToList();
        foreach (var pattern in Patterns.Where(p => p.IsConcrete))
        {
            _concrete.Add(pattern.Text);
        }

        _wildcards = Patterns.Where(p => !p.IsConcrete).ToArray();
        _byHead = _wildcards.Where(p => p.Head is not null).GroupBy(p => p.Head!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);
        _byHeadSpan = _byHead.GetAlternateLookup<ReadOnlySpan<char>>();
        _headless = _wildcards.Where(p => p.Head is null).ToArray();
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

        if (_wildcards.Length == 0)
        {
            return false;
        }

        var end = scope.AsSpan().IndexOfAny(':', '/');
        if (_byHeadSpan.TryGetValue(end < 0 ? scope : scope.AsSpan(0, end), out var family))
        {
            foreach (var pattern in family)
            {
                if (pattern.Matches(scope))
                {
                    return true;
                }
            }
        }

        foreach (var pattern in _headless)
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
