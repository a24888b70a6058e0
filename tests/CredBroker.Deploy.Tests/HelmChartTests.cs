using System.Text.Json.Nodes;

namespace CredBroker.Deploy.Tests;

/// <summary>charts/credbroker through the real helm (lint, template) and yamllint, with the default and a production-like values file.</summary>
[TestFixture]
public sealed class HelmChartTests
{
    private static readonly string[] Production = ["-f", RenderedChart.ProductionValues];

    public static IEnumerable<TestCaseData> ValueSets()
    {
        yield return new TestCaseData((object)Array.Empty<string>()).SetArgDisplayNames("default values");
        yield return new TestCaseData((object)Production).SetArgDisplayNames("production values");
        yield return new TestCaseData((object)ChartConfigurationTests.NewerOptionValues).SetArgDisplayNames("clock, audit, DPoP, SSF options");
    }

    [TestCaseSource(nameof(ValueSets))]
    public void HelmLint_Passes(string[] values)
    {
        var (exit, stdout, stderr) = Tool.Run(Tool.Helm, ["lint", "--strict", RenderedChart.Chart, .. values]);

        Assert.That(exit, Is.Zero, stdout + stderr);
        Assert.That(stdout, Does.Contain("0 chart(s) failed"));
    }

    [TestCaseSource(nameof(ValueSets))]
    public void RenderedManifests_PassYamllint(string[] values)
    {
        var chart = RenderedChart.Render(values);

        var (exit, stdout, stderr) = Tool.Run(Tool.Yamllint, ["-c", "charts/yamllint.yaml", "-f", "parsable", "-"], stdin: chart.Yaml);

        Assert.That(stdout.Split('\n').Where(l => l.Contains("[error]")), Is.Empty);
        Assert.That(exit, Is.Zero, stdout + stderr);
    }

    [Test]
    public void Yamllint_RejectsBrokenIndentation_SoTheCheckAbove_CanFail()
    {
        var (exit, stdout, _) = Tool.Run(Tool.Yamllint, ["-c", "charts/yamllint.yaml", "-f", "parsable", "-"], stdin: "---\na:\n  b: 1\n   c: 2\n");

        Assert.That(exit, Is.Not.Zero);
        Assert.That(stdout, Does.Contain("[error]"));
    }

    [TestCaseSource(nameof(ValueSets))]
    public void RendersEveryKindTheIssueAsksFor(string[] values)
    {
        var chart = RenderedChart.Render(values);

        foreach (var kind in new[] { "Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy" })
        {
            Assert.That(chart.Has(kind), Is.True, kind);
        }
    }

    [TestCaseSource(nameof(ValueSets))]
    public void Pod_RunsNonRoot_ReadOnlyRoot_NoPrivilegeEscalation_AllCapabilitiesDropped(string[] values)
    {
        var chart = RenderedChart.Render(values);
        var pod = chart.PodSpec["securityContext"]!;
        var container = chart.Container["securityContext"]!;

        Assert.That((string?)pod["runAsNonRoot"], Is.EqualTo("true"));
        Assert.That(int.Parse((string)pod["runAsUser"]!), Is.GreaterThan(0));
        Assert.That((string?)pod["seccompProfile"]!["type"], Is.EqualTo("RuntimeDefault"));
        Assert.That((string?)container["runAsNonRoot"], Is.EqualTo("true"));
        Assert.That((string?)container["readOnlyRootFilesystem"], Is.EqualTo("true"));
        Assert.That((string?)container["allowPrivilegeEscalation"], Is.EqualTo("false"));
        Assert.That((string?)container["privileged"], Is.EqualTo("false"));
        Assert.That(container["capabilities"]!["drop"]!.AsArray().Select(c => (string?)c), Is.EqualTo(new[] { "ALL" }));
        Assert.That(container["capabilities"]!["add"], Is.Null);
        Assert.That((string?)chart.PodSpec["automountServiceAccountToken"], Is.EqualTo("false"), "the broker never calls the Kubernetes API");
        // A read-only root needs a writable /tmp.
        Assert.That(Mounts(chart).ContainsKey("/tmp"), Is.True);
    }

    [TestCaseSource(nameof(ValueSets))]
    public void Probes_LivenessOnHealthz_ReadinessOnReadyz_OnTheHttpPort(string[] values)
    {
        var container = RenderedChart.Render(values).Container;

        Assert.That((string?)container["livenessProbe"]!["httpGet"]!["path"], Is.EqualTo("/healthz"));
        Assert.That((string?)container["startupProbe"]!["httpGet"]!["path"], Is.EqualTo("/healthz"));
        Assert.That((string?)container["readinessProbe"]!["httpGet"]!["path"], Is.EqualTo("/readyz"));
        foreach (var probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
        {
            Assert.That((string?)container[probe]!["httpGet"]!["port"], Is.EqualTo("http"), probe);
        }
    }

    [TestCaseSource(nameof(ValueSets))]
    public void ThreeListeners_AgentAndHttpService_OperatorOnItsOwnService(string[] values)
    {
        var chart = RenderedChart.Render(values);
        var ports = chart.Container["ports"]!.AsArray().ToDictionary(p => (string)p!["name"]!, p => (string)p!["containerPort"]!);
        var main = ServicePorts(chart.Single("Service", "cb-credbroker"));
        var operatorService = ServicePorts(chart.Single("Service", "cb-credbroker-operator"));

        Assert.That(ports, Is.EqualTo(new Dictionary<string, string> { ["http"] = "5400", ["grpc-agent"] = "5401", ["grpc-operator"] = "5402" }));
        Assert.That(main.Keys, Is.EquivalentTo(new[] { "http", "grpc-agent" }));
        Assert.That(operatorService.Keys, Is.EquivalentTo(new[] { "grpc-operator" }));
        Assert.That((string?)chart.Single("Service", "cb-credbroker-operator")["spec"]!["type"], Is.EqualTo("ClusterIP"));
    }

    [TestCaseSource(nameof(ValueSets))]
    public void NetworkPolicy_OperatorPortOnlyFromTheListedPeers(string[] values)
    {
        var rules = RenderedChart.Render(values).Single("NetworkPolicy")["spec"]!["ingress"]!.AsArray();

        var operatorRules = rules.Where(r => r!["ports"]!.AsArray().Any(p => (string?)p!["port"] == "grpc-operator")).ToList();
        Assert.That(operatorRules, Has.Count.EqualTo(1));
        Assert.That(operatorRules[0]!["from"]!.AsArray(), Is.Not.Empty, "a rule without peers would open the operator port to everyone");
        Assert.That(operatorRules[0]!["ports"]!.AsArray(), Has.Count.EqualTo(1), "the operator rule must not open other ports");
        Assert.That(operatorRules[0]!["from"]!.ToJsonString(), Does.Contain("credbroker.dev/operator-client"));
        Assert.That(rules.Where(r => r!["from"] is null).SelectMany(r => r!["ports"]!.AsArray()).Select(p => (string?)p!["port"]),
            Has.None.EqualTo("grpc-operator"));
    }

    /// <summary>The production values with the web console on: OIDC sign-in, a group grant, one webhook.</summary>
    public static readonly string[] ConsoleValues =
    [
        "-f", RenderedChart.ProductionValues, "--set", "console.enabled=true", "--set", "console.oidc.authority=https://login.example.com",
        "--set", "console.oidc.clientId=credbroker-console", "--set", "console.oidc.clientSecretName=credbroker-console-oidc",
        "--set", "console.publicUrl=https://credbroker.example.com/", "--set", "operators.grants[0].issuer=https://login.example.com",
        "--set", "operators.grants[0].group=sre-approvers", "--set", "operators.grants[0].roles[0]=Approver",
        "--set", "console.webhooks.endpoints[0].url=https://hooks.example.com/credbroker", "--set", "console.webhooks.endpoints[0].secretName=credbroker-webhook",
        "--set", "networkPolicy.consoleFrom[0].namespaceSelector.matchLabels.name=ingress",
    ];

    [Test]
    public void Console_HasItsOwnPortServiceAndNetworkPolicyRule_OnlyWhenEnabled()
    {
        var off = RenderedChart.Render("-f", RenderedChart.ProductionValues);
        Assert.That(off.Manifests.Where(m => (string?)m["kind"] == "Service").Select(m => (string?)m["metadata"]!["name"]), Has.None.EqualTo("cb-credbroker-console"));
        Assert.That(off.Container["ports"]!.AsArray().Select(p => (string?)p!["name"]), Has.None.EqualTo("console"));
        Assert.That(off.AppSettingsJson, Does.Contain("\"ConsolePort\": 0"), "no console listener unless enabled");

        var on = RenderedChart.Render(ConsoleValues);
        var ports = on.Container["ports"]!.AsArray().ToDictionary(p => (string)p!["name"]!, p => (string)p!["containerPort"]!);
        Assert.That(ports["console"], Is.EqualTo("5403"));
        Assert.That(ServicePorts(on.Single("Service", "cb-credbroker-console")).Keys, Is.EquivalentTo(new[] { "console" }), "the console's own Service, nothing else on it");
        Assert.That(ServicePorts(on.Single("Service", "cb-credbroker")).Keys, Has.None.EqualTo("console"));
        var rules = on.Single("NetworkPolicy")["spec"]!["ingress"]!.AsArray();
        var console = rules.Single(r => r!["ports"]!.AsArray().Any(p => (string?)p!["port"] == "console"))!;
        Assert.That(console["ports"]!.AsArray(), Has.Count.EqualTo(1));
        Assert.That(console["from"]!.ToJsonString(), Does.Contain("ingress"));
        Assert.That(on.AppSettingsJson, Does.Contain("/etc/credbroker/console-oidc/client-secret").And.Contain("/etc/credbroker/webhooks/0/secret"));
        var lint = Tool.Run(Tool.Helm, ["lint", "--strict", RenderedChart.Chart, .. ConsoleValues]);
        Assert.That(lint.Exit, Is.Zero, lint.Stdout + lint.Stderr);
    }

    [Test]
    public void NetworkPolicy_NoOperatorPeers_ClosesTheOperatorPort()
    {
        var rules = RenderedChart.Render("--set", "networkPolicy.operatorFrom=null").Single("NetworkPolicy")["spec"]!["ingress"]!.AsArray();

        Assert.That(rules.SelectMany(r => r!["ports"]!.AsArray()).Select(p => (string?)p!["port"]), Is.EquivalentTo(new[] { "http", "grpc-agent" }));
    }

    [Test]
    public void Production_AutoscalesWithHpa_DeploymentLeavesReplicasToIt_PdbKeepsTwo()
    {
        var chart = RenderedChart.Render(Production);
        var hpa = chart.Single("HorizontalPodAutoscaler")["spec"]!;

        Assert.That((string?)hpa["minReplicas"], Is.EqualTo("3"));
        Assert.That((string?)hpa["scaleTargetRef"]!["name"], Is.EqualTo("cb-credbroker"));
        Assert.That(chart.Single("Deployment")["spec"]!["replicas"], Is.Null);
        Assert.That((string?)chart.Single("PodDisruptionBudget")["spec"]!["minAvailable"], Is.EqualTo("2"));
        Assert.That((string?)chart.Container["resources"]!["requests"]!["cpu"], Is.EqualTo("1"));
        Assert.That((string?)chart.Container["image"], Does.EndWith("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    }

    [Test]
    public void Defaults_NoHpa_FixedReplicas()
    {
        var chart = RenderedChart.Render();

        Assert.That(chart.Has("HorizontalPodAutoscaler"), Is.False);
        Assert.That((string?)chart.Single("Deployment")["spec"]!["replicas"], Is.EqualTo("2"));
    }

    [Test]
    public void SecretsAreMountedAsFiles_NeverPassedInEnvironment()
    {
        var chart = RenderedChart.Render(Production);
        var volumes = chart.PodSpec["volumes"]!.AsArray().ToDictionary(v => (string)v!["name"]!, v => v!);

        Assert.That((string?)volumes["signing-keys"]["secret"]!["secretName"], Is.EqualTo("credbroker-signing-keys"));
        Assert.That((string?)volumes["tls"]["secret"]!["secretName"], Is.EqualTo("credbroker-grpc-tls"));
        Assert.That((string?)volumes["client-ca"]["secret"]!["secretName"], Is.EqualTo("credbroker-client-ca"));
        Assert.That((string?)volumes["redis-auth"]["secret"]!["secretName"], Is.EqualTo("redis-credbroker"));
        Assert.That((string?)volumes["redis-ca"]["secret"]!["secretName"], Is.EqualTo("redis-ca"));
        Assert.That(chart.Container.ToJsonString(), Does.Not.Contain("secretKeyRef"));
        // Whole-Secret mounts (not subPath), so a rotated key file reaches running pods.
        Assert.That(Mounts(chart)["/etc/credbroker/signing"]["subPath"], Is.Null);
    }

    [Test]
    public void InvalidValues_AreRefusedWithAMessage()
    {
        var sentinel = RenderedChart.TryRender("--set", "redis.mode=sentinel");
        var plaintext = RenderedChart.TryRender("--set", "tls.enabled=false");
        var passwordInString = RenderedChart.TryRender("--set", "redis.extraOptions=password=hunter2");
        var clusterWithoutNodes = RenderedChart.TryRender("--set", "redis.mode=cluster");

        Assert.That(sentinel.Exit, Is.Not.Zero);
        Assert.That(sentinel.Output, Does.Contain("redis.sentinel.nodes"));
        Assert.That(plaintext.Exit, Is.Not.Zero);
        Assert.That(plaintext.Output, Does.Contain("listeners.allowPlaintext"));
        Assert.That(passwordInString.Exit, Is.Not.Zero);
        Assert.That(passwordInString.Output, Does.Contain("/redis/extraOptions"));
        Assert.That(clusterWithoutNodes.Exit, Is.Not.Zero);
        Assert.That(clusterWithoutNodes.Output, Does.Contain("redis.cluster.nodes"));
    }

    [Test]
    public void ConfigChange_RollsThePods()
    {
        string Checksum(RenderedChart c) => (string)c.Single("Deployment")["spec"]!["template"]!["metadata"]!["annotations"]!["checksum/config"]!;

        Assert.That(Checksum(RenderedChart.Render("--set", "redis.standalone.host=redis-a")),
            Is.Not.EqualTo(Checksum(RenderedChart.Render("--set", "redis.standalone.host=redis-b"))));
    }

    internal static Dictionary<string, JsonNode> Mounts(RenderedChart chart) =>
        chart.Container["volumeMounts"]!.AsArray().ToDictionary(m => (string)m!["mountPath"]!, m => m!);

    private static Dictionary<string, string> ServicePorts(JsonObject service) =>
        service["spec"]!["ports"]!.AsArray().ToDictionary(p => (string)p!["name"]!, p => (string)p!["targetPort"]!);
}
