using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CredBroker.Core.Policy.File;

/// <summary>
/// Reads typed values out of a YAML node tree and records each problem with the line and column
/// of the offending node and its field path (<c>agents[1].allowed_scopes[0]</c>).
/// </summary>
internal sealed class YamlFields(string source)
{
    public List<PolicyError> Errors { get; } = [];

    public void Error(YamlNode? node, Mark fallback, string field, string message)
    {
        var mark = node?.Start ?? fallback;
        Errors.Add(new PolicyError(source, (int)mark.Line, (int)mark.Column, field, message));
    }

    public void Error(YamlNode node, string field, string message) => Error(node, node.Start, field, message);

    /// <summary>The mapping's entries by key; keys outside <paramref name="known"/> are errors (catches typos that would silently loosen policy).</summary>
    public Dictionary<string, YamlNode>? Mapping(YamlNode node, string field, params string[] known)
    {
        if (node is not YamlMappingNode mapping)
        {
            Error(node, field, "expected a mapping (key: value lines).");
            return null;
        }

        var entries = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (key, value) in mapping.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? string.Empty;
            var path = field.Length == 0 ? name : field + "." + name;
            if (known.Length > 0 && !known.Contains(name, StringComparer.Ordinal))
            {
                Error(key, path, $"unknown field (expected one of: {string.Join(", ", known)}).");
            }
            else if (!entries.TryAdd(name, value))
            {
                Error(key, path, "given twice.");
            }
        }

        return entries;
    }

    public string? String(Dictionary<string, YamlNode> map, string key, string field, YamlNode owner, bool required = false, string? why = null)
    {
        if (!map.TryGetValue(key, out var node))
        {
            if (required)
            {
                Error(owner, Join(field, key), why ?? "required.");
            }

            return null;
        }

        if (node is YamlScalarNode { Value: { } value } && (!required || !string.IsNullOrWhiteSpace(value)))
        {
            return value;
        }

        Error(node, Join(field, key), required ? why ?? "required: a non-empty text value." : "expected a text value.");
        return null;
    }

    public List<(string Value, YamlNode Node)> StringList(Dictionary<string, YamlNode> map, string key, string field, int max = 1000)
    {
        var list = new List<(string, YamlNode)>();
        if (!map.TryGetValue(key, out var node))
        {
            return list;
        }

        if (node is not YamlSequenceNode sequence)
        {
            Error(node, Join(field, key), "expected a list ([a, b] or '- a' lines).");
            return list;
        }

        if (sequence.Children.Count > max)
        {
            Error(node, Join(field, key), $"at most {max} entries.");
        }

        for (var i = 0; i < sequence.Children.Count; i++)
        {
            if (sequence.Children[i] is YamlScalarNode { Value: { Length: > 0 } value })
            {
                list.Add((value, sequence.Children[i]));
            }
            else
            {
                Error(sequence.Children[i], $"{Join(field, key)}[{i}]", "expected a non-empty text value.");
            }
        }

        return list;
    }

    public int? Int(Dictionary<string, YamlNode> map, string key, string field, int min, int max)
    {
        if (!map.TryGetValue(key, out var node))
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        Error(node, Join(field, key), $"expected a whole number between {min} and {max}.");
        return null;
    }

    public TimeSpan? Duration(Dictionary<string, YamlNode> map, string key, string field, TimeSpan? max = null)
    {
        if (!map.TryGetValue(key, out var node))
        {
            return null;
        }

        var limit = max ?? TimeSpan.FromDays(1);
        if (node is YamlScalarNode { Value: { } text } && TryParseDuration(text, out var value) && value > TimeSpan.Zero && value <= limit)
        {
            return value;
        }

        Error(node, Join(field, key), $"expected a duration between 1s and {limit.TotalHours:0.##}h, such as 90s, 15m or 1h.");
        return null;
    }

    /// <summary>Parses <c>90s</c>, <c>15m</c>, <c>1h</c>.</summary>
    public static bool TryParseDuration(string value, out TimeSpan duration)
    {
        duration = default;
        if (value.Length < 2 || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 1_000_000)
        {
            return false;
        }

        switch (value[^1])
        {
            case 's': duration = TimeSpan.FromSeconds(n); return true;
            case 'm': duration = TimeSpan.FromMinutes(n); return true;
            case 'h': duration = TimeSpan.FromHours(n); return true;
            default: return false;
        }
    }

    /// <summary>A label mapping: key → list of values (context vocabulary and conditions).</summary>
    public Dictionary<string, IReadOnlySet<string>> Labels(YamlNode node, string field)
    {
        var labels = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        if (Mapping(node, field) is not { } map)
        {
            return labels;
        }

        foreach (var (key, _) in map)
        {
            if (!Broker.Syntax.ContextKey().IsMatch(key))
            {
                Error(map[key], Join(field, key), "label keys are lower-case identifiers (a-z, 0-9, _ . -) of up to 64 characters.");
                continue;
            }

            var values = StringList(map, key, field);
            if (values.Count == 0)
            {
                Error(map[key], Join(field, key), "list at least one value.");
            }

            labels[key] = values.Select(v => v.Value).ToHashSet(StringComparer.Ordinal);
        }

        return labels;
    }

    public static string Join(string field, string key) => field.Length == 0 ? key : field + "." + key;
}
