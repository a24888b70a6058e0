using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace CredBroker.Deploy.Tests;

/// <summary>`helm template` output: the raw YAML (for yamllint) and each manifest as JSON (scalars as strings) for assertions.</summary>
internal sealed class RenderedChart
{
    public const string Chart = "charts/credbroker";
    public const string ProductionValues = "charts/credbroker/ci/production-values.yaml";

    private RenderedChart(string yaml, IReadOnlyList<JsonObject> manifests)
    {
        Yaml = yaml;
        Manifests = manifests;
    }

    public string Yaml { get; }

    public IReadOnlyList<JsonObject> Manifests { get; }

    public static (int Exit, string Output) TryRender(params string[] arguments)
    {
        var (exit, stdout, stderr) = Tool.Run(Tool.Helm, ["template", "cb", Chart, "--namespace", "credbroker", .. arguments]);
        return (exit, exit == 0 ? stdout : stderr);
    }

    public static RenderedChart Render(params string[] arguments)
    {
        var (exit, output) = TryRender(arguments);
        Assert.That(exit, Is.Zero, "helm template failed: " + output);
        return new RenderedChart(output, Parse(output));
    }

    public JsonObject Single(string kind, string? name = null)
    {
        var matches = Manifests.Where(m => (string?)m["kind"] == kind && (name is null || (string?)m["metadata"]!["name"] == name)).ToList();
        Assert.That(matches, NUnit.Framework.Has.Count.EqualTo(1), $"exactly one {kind} {name}");
        return matches[0];
    }

    public bool Has(string kind) => Manifests.Any(m => (string?)m["kind"] == kind);

    public JsonObject Container => (JsonObject)Single("Deployment")["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single()!;

    public JsonObject PodSpec => (JsonObject)Single("Deployment")["spec"]!["template"]!["spec"]!;

    /// <summary>The broker configuration the chart mounts as /app/appsettings.Production.json.</summary>
    public string AppSettingsJson => (string)Single("ConfigMap")["data"]!["appsettings.Production.json"]!;

    private static List<JsonObject> Parse(string yaml)
    {
        var deserializer = new DeserializerBuilder().Build();
        var toJson = new SerializerBuilder().JsonCompatible().Build();
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<StreamStart>();
        var manifests = new List<JsonObject>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var document = deserializer.Deserialize<object?>(parser);
            if (document is not null)
            {
                manifests.Add(JsonNode.Parse(toJson.Serialize(document))!.AsObject());
            }
        }

        return manifests;
    }
}
