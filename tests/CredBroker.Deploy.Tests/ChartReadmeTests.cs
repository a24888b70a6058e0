using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace CredBroker.Deploy.Tests;

/// <summary>The chart README's values table keeps up with values.yaml.</summary>
[TestFixture]
public sealed class ChartReadmeTests
{
    [Test]
    public void EveryValue_IsDocumented_InTheReadme()
    {
        var readme = File.ReadAllText(Path.Combine(Tool.Root, "charts", "credbroker", "README.md"));
        var values = new YamlStream();
        values.Load(new StringReader(File.ReadAllText(Path.Combine(Tool.Root, "charts", "credbroker", "values.yaml"))));
        var leaves = new List<string>();
        Flatten((YamlMappingNode)values.Documents[0].RootNode, string.Empty, leaves);

        // The key column of the values table; a leaf is documented when it, or a parent documented as a whole
        // (e.g. `securityContext`), is named there.
        var table = readme[readme.IndexOf("## Values", StringComparison.Ordinal)..];
        var documented = table.Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .SelectMany(l => Regex.Matches(l.Split('|')[1], "`([^`]+)`").Select(m => m.Groups[1].Value)).ToHashSet();
        var undocumented = leaves.Where(leaf => !Ancestors(leaf).Any(documented.Contains)).ToList();

        Assert.That(leaves, Has.Count.GreaterThan(50));
        Assert.That(undocumented, Is.Empty);
    }

    private static IEnumerable<string> Ancestors(string path)
    {
        var parts = path.Split('.');
        return Enumerable.Range(1, parts.Length).Select(n => string.Join('.', parts.Take(n)));
    }

    private static void Flatten(YamlMappingNode node, string prefix, List<string> leaves)
    {
        foreach (var (key, value) in node.Children)
        {
            var path = prefix + ((YamlScalarNode)key).Value;
            if (value is YamlMappingNode { Children.Count: > 0 } child)
            {
                Flatten(child, path + ".", leaves);
            }
            else
            {
                leaves.Add(path);
            }
        }
    }
}
