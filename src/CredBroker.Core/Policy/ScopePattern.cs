using System.Text.RegularExpressions;

namespace CredBroker.Core.Policy;

/// <summary>
/// A scope pattern from the policy file: a concrete scope (<c>tickets:read</c>) or one with
/// <c>*</c> segments (<c>github.repo:write:org/*</c>). Segments are separated by <c>:</c> and
/// <c>/</c>; a <c>*</c> segment matches exactly one non-empty segment, never a separator, so
/// <c>org/*</c> matches <c>org/web</c> but not <c>org/web/wiki</c>. Requests and tokens carry
/// concrete scopes only.
/// </summary>
public sealed partial class ScopePattern : IEquatable<ScopePattern>
{
    private readonly string[] _segments;
    private readonly bool[] _stars;
    private readonly char[] _separators;

    private ScopePattern(string text, string[] segments, char[] separators)
    {
        Text = text;
        _segments = segments;
        _stars = segments.Select(s => s == "*").ToArray();
        _separators = separators;
        IsConcrete = !segments.Contains("*");
    }

    public string Text { get; }

    /// <summary>The first segment when it is literal (an index key for wildcard patterns), else null.</summary>
    public string? Head => _stars[0] ? null : _segments[0];

    public bool IsConcrete { get; }

    /// <summary>Pattern syntax: 1-128 characters of letters, digits and ._:/- where a whole segment may be <c>*</c>.</summary>
    [GeneratedRegex("^(?:\\*|[A-Za-z0-9][A-Za-z0-9._-]*)(?:[:/](?:\\*|[A-Za-z0-9._-]+))*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Syntax();

    public static bool TryParse(string? text, out ScopePattern pattern)
    {
        pattern = null!;
        if (text is null || text.Length is 0 or > 128 || !Syntax().IsMatch(text))
        {
            return false;
        }

        var segments = new List<string>();
        var separators = new List<char>();
        var start = 0;
        for (var i = 0; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] is ':' or '/')
            {
                segments.Add(text[start..i]);
                if (i < text.Length)
                {
                    separators.Add(text[i]);
                }

                start = i + 1;
            }
        }

        pattern = new ScopePattern(text, [.. segments], [.. separators]);
        return true;
    }

    public static ScopePattern Parse(string text) =>
        TryParse(text, out var pattern) ? pattern : throw new FormatException($"'{text}' is not a scope pattern.");

    /// <summary>True when the concrete <paramref name="scope"/> is one this pattern names. Allocation-free.</summary>
    public bool Matches(string scope)
    {
        if (IsConcrete)
        {
            return string.Equals(Text, scope, StringComparison.Ordinal);
        }

        var position = 0;
        for (var i = 0; i < _segments.Length; i++)
        {
            var end = position;
            while (end < scope.Length && scope[end] is not (':' or '/'))
            {
                end++;
            }

            var segment = scope.AsSpan(position, end - position);
            if (_stars[i] ? segment.Length == 0 : !segment.SequenceEqual(_segments[i]))
            {
                return false;
            }

            if (i == _segments.Length - 1)
            {
                return end == scope.Length;
            }

            if (end == scope.Length || scope[end] != _separators[i])
            {
                return false;
            }

            position = end + 1;
        }

        return false;
    }

    /// <summary>True when some concrete scope matches both patterns (static analysis).</summary>
    public bool Overlaps(ScopePattern other)
    {
        if (_segments.Length != other._segments.Length || !_separators.AsSpan().SequenceEqual(other._separators))
        {
            return false;
        }

        for (var i = 0; i < _segments.Length; i++)
        {
            if (_segments[i] != "*" && other._segments[i] != "*" && _segments[i] != other._segments[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when every scope this pattern matches is also matched by <paramref name="other"/>.</summary>
    public bool IsCoveredBy(ScopePattern other) =>
        Overlaps(other) && _segments.Zip(other._segments).All(p => p.Second == "*" || p.First == p.Second);

    public bool Equals(ScopePattern? other) => other is not null && other.Text == Text;

    public override bool Equals(object? obj) => Equals(obj as ScopePattern);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Text);

    public override string ToString() => Text;
}
