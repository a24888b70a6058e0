using System.Text.RegularExpressions;

namespace CredBroker.Deploy.Tests;

/// <summary>Just enough of a Dockerfile parser for the checks: stages with their instructions, continuation lines joined.</summary>
internal sealed partial class Dockerfile
{
    private Dockerfile(IReadOnlyList<Stage> stages, IReadOnlyDictionary<string, string> args)
    {
        Stages = stages;
        Args = args;
    }

    public IReadOnlyList<Stage> Stages { get; }

    /// <summary>Global ARG defaults (before the first FROM).</summary>
    public IReadOnlyDictionary<string, string> Args { get; }

    public static Dockerfile Load(string path)
    {
        var stages = new List<Stage>();
        var args = new Dictionary<string, string>();
        var logical = Regex.Replace(File.ReadAllText(path), @"\\\r?\n", " ");
        foreach (var raw in logical.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var (keyword, rest) = (line.Split(' ', 2)[0].ToUpperInvariant(), line.Split(' ', 2).ElementAtOrDefault(1)?.Trim() ?? string.Empty);
            if (keyword == "FROM")
            {
                var from = FromPattern().Match(rest);
                stages.Add(new Stage(from.Groups["image"].Value, from.Groups["name"].Value, []));
            }
            else if (stages.Count == 0 && keyword == "ARG" && rest.Split('=', 2) is [var name, var value])
            {
                args[name] = value;
            }
            else if (stages.Count > 0)
            {
                stages[^1].Instructions.Add((keyword, rest));
            }
        }

        return new Dockerfile(stages, args);
    }

    public string Expand(string text) => Regex.Replace(text, @"\$\{(\w+)\}", m => Args.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value);

    internal sealed record Stage(string Image, string Name, List<(string Keyword, string Arguments)> Instructions)
    {
        public IEnumerable<string> All(string keyword) => Instructions.Where(i => i.Keyword == keyword).Select(i => i.Arguments);

        public string Last(string keyword) => All(keyword).Last();
    }

    [GeneratedRegex(@"^(?<image>\S+)(\s+AS\s+(?<name>\S+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex FromPattern();
}
