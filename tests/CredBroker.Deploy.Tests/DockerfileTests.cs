using System.Text.Json.Nodes;

namespace CredBroker.Deploy.Tests;

/// <summary>
/// No container engine runs here, so the Dockerfile is proven the other way round: the build stage's own
/// `dotnet publish` runs on a copy of exactly what the build stage COPYs, and the runtime stage's
/// expectations (entrypoint, framework, user, ports, workdir) are checked against that output and the chart.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DockerfileTests
{
    private Dockerfile _dockerfile = null!;
    private string _context = null!;
    private string _output = null!;
    private (int Exit, string Stdout, string Stderr) _publish;

    private Dockerfile.Stage Build => _dockerfile.Stages[0];

    private Dockerfile.Stage Runtime => _dockerfile.Stages[^1];

    [OneTimeSetUp]
    public void PublishFromTheBuildContext()
    {
        _dockerfile = Dockerfile.Load(Path.Combine(Tool.Root, "Dockerfile"));
        _context = Directory.CreateTempSubdirectory("credbroker-docker-context-").FullName;
        _output = Path.Combine(_context, "_out");
        var excluded = File.ReadAllLines(Path.Combine(Tool.Root, ".dockerignore"))
            .Where(l => l.StartsWith("**/", StringComparison.Ordinal)).Select(l => l[3..].TrimEnd('/')).ToHashSet();

        foreach (var copy in Build.All("COPY"))
        {
            var parts = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[..^1])
            {
                CopyInto(Path.Combine(Tool.Root, source.TrimEnd('/')), Path.Combine(_context, source.TrimEnd('/')), excluded);
            }
        }

        var command = Build.Last("RUN");
        var outDir = PublishOutputDirectory(command);
        _publish = Tool.Run("bash", ["-c", command.Replace($"-o {outDir}", $"-o {_output}", StringComparison.Ordinal) + " -nologo"], timeoutSeconds: 600, workingDirectory: _context);
    }

    [OneTimeTearDown]
    public void RemoveContext() => Directory.Delete(_context, recursive: true);

    [Test]
    public void BuildStage_PublishesFromOnlyWhatItCopies()
    {
        Assert.That(_publish.Exit, Is.Zero, _publish.Stdout + _publish.Stderr);
        Assert.That(Build.Image, Does.StartWith("mcr.microsoft.com/dotnet/sdk:"));
    }

    [Test]
    public void RuntimeStage_CopiesThePublishOutput_AndItHasTheEntrypointAssembly()
    {
        var copy = Runtime.All("COPY").Single();
        var entrypoint = JsonNode.Parse(Runtime.Last("ENTRYPOINT"))!.AsArray().Select(n => (string)n!).ToArray();

        Assert.That(copy, Is.EqualTo($"--from={Build.Name} {PublishOutputDirectory(Build.Last("RUN"))}/ ./"));
        Assert.That(entrypoint, Has.Length.EqualTo(2));
        Assert.That(entrypoint[0], Is.EqualTo("dotnet"));
        Assert.That(File.Exists(Path.Combine(_output, entrypoint[1])), Is.True, entrypoint[1] + " is not in the publish output");
        Assert.That(File.Exists(Path.Combine(_output, "appsettings.json")), Is.True);
    }

    [Test]
    public void EveryAssemblyTheBrokerLoads_IsInThePublishOutput()
    {
        var deps = JsonNode.Parse(File.ReadAllText(Path.Combine(_output, "CredBroker.Server.deps.json")))!;
        var target = deps["targets"]!.AsObject().Single().Value!.AsObject();
        var assemblies = target.Select(t => t.Value!["runtime"]?.AsObject()).OfType<JsonObject>().SelectMany(r => r.Select(a => Path.GetFileName(a.Key))).ToList();

        Assert.That(assemblies, Does.Contain("StackExchange.Redis.dll").And.Contain("Google.Protobuf.dll").And.Contain("CredBroker.Core.dll"));
        Assert.That(assemblies.Where(a => !File.Exists(Path.Combine(_output, a))), Is.Empty);
    }

    [Test]
    public void RuntimeImage_ProvidesTheFrameworkThePublishOutputNeeds()
    {
        var runtimeConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(_output, "CredBroker.Server.runtimeconfig.json")))!["runtimeOptions"]!;
        var frameworks = (runtimeConfig["frameworks"]?.AsArray().Select(f => f!) ?? [runtimeConfig["framework"]!])
            .Select(f => ((string)f["name"]!, (string)f["version"]!)).ToList();
        var image = _dockerfile.Expand(Runtime.Image);

        Assert.That(image, Does.StartWith("mcr.microsoft.com/dotnet/aspnet:"), "the ASP.NET runtime image, not the SDK");
        Assert.That(frameworks.Select(f => f.Item1), Does.Contain("Microsoft.AspNetCore.App"));
        var tag = image.Split(':')[1];
        Assert.That(frameworks.All(f => tag.StartsWith(string.Join('.', f.Item2.Split('.').Take(2)) + "-", StringComparison.Ordinal)), Is.True,
            $"image tag {tag} vs frameworks {string.Join(", ", frameworks)}");
    }

    [Test]
    public void RuntimeStage_RunsAsTheChartsNonRootUser_FromTheChartsConfigDirectory()
    {
        var chart = RenderedChart.Render();
        var user = Runtime.Last("USER").Split(':')[0];
        var workdir = Runtime.Last("WORKDIR");

        Assert.That(int.Parse(user), Is.GreaterThan(0));
        Assert.That(user, Is.EqualTo((string)chart.PodSpec["securityContext"]!["runAsUser"]!));
        Assert.That(HelmChartTests.Mounts(chart).ContainsKey($"{workdir}/appsettings.Production.json"), Is.True,
            "the chart mounts the configuration into the image's working directory (the content root)");
        Assert.That(Runtime.Last("EXPOSE").Split(' '), Is.EquivalentTo(chart.Container["ports"]!.AsArray().Select(p => (string)p!["containerPort"]!)));
    }

    [Test]
    public void PublishOutput_HoldsNoKeysOrCertificates()
    {
        var secrets = Directory.EnumerateFiles(_output, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".pem", StringComparison.Ordinal) || f.EndsWith(".key", StringComparison.Ordinal) || f.EndsWith(".pfx", StringComparison.Ordinal));

        Assert.That(secrets, Is.Empty);
    }

    [Test]
    public void PublishedBroker_Runs_AndRefusesToStartWithoutProductionSettings()
    {
        var (exit, stdout, stderr) = Tool.Run("dotnet", [Path.Combine(_output, "CredBroker.Server.dll")], timeoutSeconds: 60);

        Assert.That(exit, Is.EqualTo(2), stdout + stderr);
        Assert.That(stderr, Does.Contain("CredBroker refuses to start").And.Contain("CredBroker:Redis:Configuration"));
    }

    private static string PublishOutputDirectory(string command)
    {
        var parts = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts[Array.IndexOf(parts, "-o") + 1];
    }

    private static void CopyInto(string source, string destination, HashSet<string> excludedNames)
    {
        if (File.Exists(source))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(source, destination, overwrite: true);
            return;
        }

        Assert.That(Directory.Exists(source), Is.True, $"the Dockerfile copies {source}, which does not exist");
        foreach (var entry in Directory.EnumerateFileSystemEntries(source))
        {
            if (!excludedNames.Contains(Path.GetFileName(entry)))
            {
                CopyInto(entry, Path.Combine(destination, Path.GetFileName(entry)), excludedNames);
            }
        }
    }
}
