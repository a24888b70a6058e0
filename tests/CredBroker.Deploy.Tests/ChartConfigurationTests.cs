using System.Collections;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Server.Hosting;
using Microsoft.Extensions.Configuration;

namespace CredBroker.Deploy.Tests;

/// <summary>
/// The configuration the chart renders is the broker's own: every key is a BrokerOptions setting (nothing the
/// server would silently ignore), it binds, production mode accepts it, and every file it names is mounted.
/// </summary>
[TestFixture]
public sealed class ChartConfigurationTests
{
    [Test]
    public void ProductionValues_BindToBrokerOptions_ThatProductionModeAccepts()
    {
        var options = Bind(RenderedChart.Render("-f", RenderedChart.ProductionValues));

        Assert.That(options.ProductionProblems(), Is.Empty);
        Assert.That(options.Dev, Is.False);
        Assert.That(options.Issuer, Is.EqualTo("https://credbroker.example.com"));
        Assert.That(options.Listen.Address, Is.EqualTo("0.0.0.0"));
        Assert.That((options.Listen.HttpPort, options.Listen.AgentPort, options.Listen.OperatorPort), Is.EqualTo((5400, 5401, 5402)));
        Assert.That(options.Listen.Tls!.ClientCaFile, Is.EqualTo("/etc/credbroker/client-ca/ca.crt"));
        Assert.That(options.Listen.Tls.RequireClientCertificate, Is.False);
        Assert.That(options.Signing.KeyFiles, Is.Empty);
        Assert.That(options.Signing.KeyDirectory, Is.EqualTo("/etc/credbroker/signing"));
        Assert.That(options.Signing.RotateEvery, Is.EqualTo(TimeSpan.FromDays(30)));
        Assert.That(options.Redis.Configuration, Does.StartWith("redis-cluster-0.redis-cluster.data.svc:6379,redis-cluster-1").And.Contain(",ssl=true,sslHost=redis-cluster.data.svc"));
        Assert.That(options.Redis.Configuration, Does.Not.Contain("password"));
        Assert.That(options.Redis.PasswordFile, Is.EqualTo("/etc/credbroker/redis-auth/password"));
        Assert.That(options.Redis.CaFile, Is.EqualTo("/etc/credbroker/redis-ca/ca.crt"));
        Assert.That(options.Identity.Issuers.Single().Workloads.Select(w => (w.Subject, w.Agent)),
            Is.EqualTo(new[] { ("system:serviceaccount:agents:ticket-triage", "ticket-triage"), ("system:serviceaccount:agents:release-notes", "release-notes-writer") }));
        Assert.That(options.Operators.Subjects, Is.EqualTo(new[] { "secops-oncall@example.com" }));
        Assert.That(options.Operators.Issuers.Single().SubjectClaim, Is.EqualTo("email"));
        Assert.That(options.Leases.SweepInterval, Is.EqualTo(TimeSpan.FromMilliseconds(200)));
        Assert.That(options.Leases.RevocationRetention, Is.EqualTo(TimeSpan.FromMinutes(121)));
        Assert.That(options.Audit.CheckpointKeyFile, Is.EqualTo("/etc/credbroker/audit-checkpoint/checkpoint-key"));
        Assert.That(options.Dpop.AgentUris, Is.EqualTo(new[] { "https://credbroker.example.com:5401" }));
    }

    [Test]
    public void DefaultValues_Bind_AndProductionModeAsksOnlyForATrustedIssuer()
    {
        var options = Bind(RenderedChart.Render());

        Assert.That(options.ProductionProblems(), Has.Count.EqualTo(1));
        Assert.That(options.ProductionProblems()[0], Does.Contain("CredBroker:Identity:Issuers"));
        Assert.That(options.Issuer, Is.EqualTo("http://cb-credbroker.credbroker.svc.cluster.local:5400"));
        Assert.That(options.Listen.Tls, Is.Not.Null, "TLS is on by default");
    }

    [Test]
    public void PlaintextBehindAMesh_RendersAllowPlaintext_AndNoTls()
    {
        var options = Bind(RenderedChart.Render("--set", "tls.enabled=false", "--set", "listeners.allowPlaintext=true"));

        Assert.That(options.Listen.Tls, Is.Null);
        Assert.That(options.Listen.AllowPlaintext, Is.True);
        Assert.That(options.ProductionProblems(), Has.None.Contains("Listen:Tls"));
    }

    public static IEnumerable<TestCaseData> KeyCases()
    {
        yield return Case("default values");
        yield return Case("production values", "-f", RenderedChart.ProductionValues);
        yield return Case("plaintext, redis tls", "--set", "tls.enabled=false", "--set", "listeners.allowPlaintext=true", "--set", "redis.tls.enabled=true", "--set", "redis.tls.caSecret=ca");

        yield return Case("redis sentinel, ACL user, WAIT", SentinelValues);
        yield return Case("web console with webhooks", HelmChartTests.ConsoleValues);
        yield return Case("clock, audit, DPoP, SSF, WAIT for lease writes", NewerOptionValues);
    }

    private static readonly string[] SentinelValues =
    [
        "--set", "redis.mode=sentinel", "--set", "redis.sentinel.nodes={sentinel-0.data.svc:26379,sentinel-1.data.svc:26379}",
        "--set", "redis.sentinel.serviceName=credbroker", "--set", "redis.user=credbroker", "--set", "redis.auth.existingSecret=redis-auth",
        "--set", "redis.timeout=00:00:03", "--set", "redis.waitReplicas=1", "--set", "redis.waitTimeout=00:00:01",
    ];

    [Test]
    public void SentinelMode_RendersTheSentinelsAndServiceName_AndTheAclUserAndWaitSettings()
    {
        var options = Bind(RenderedChart.Render(SentinelValues));

        Assert.That(options.Redis.Configuration, Is.EqualTo("sentinel-0.data.svc:26379,sentinel-1.data.svc:26379,serviceName=credbroker"));
        Assert.That((options.Redis.User, options.Redis.PasswordFile), Is.EqualTo(("credbroker", "/etc/credbroker/redis-auth/password")));
        Assert.That((options.Redis.Timeout, options.Redis.WaitReplicas, options.Redis.WaitTimeout), Is.EqualTo((TimeSpan.FromSeconds(3), 1, TimeSpan.FromSeconds(1))));
        Assert.That(options.Redis.Problems(), Is.Empty);
        Assert.That(RenderedChart.TryRender("--set", "redis.mode=sentinel", "--set", "redis.sentinel.nodes={s:26379}", "--set", "redis.sentinel.serviceName=").Output,
            Does.Contain("redis.sentinel.serviceName"));
    }

    /// <summary>Every option the chart exposes for CredBroker:Clock, Audit, Dpop, Ssf and Redis:WaitForLeaseWrites, set away from its default.</summary>
    internal static readonly string[] NewerOptionValues =
    [
        "--set", "redis.mode=cluster", "--set", "redis.cluster.nodes={redis-0.data.svc:6379}",
        "--set", "redis.waitReplicas=1", "--set", "redis.waitTimeout=00:00:00.500", "--set", "redis.waitForLeaseWrites=true",
        "--set", "clock.source=system", "--set", "clock.syncInterval=00:00:02", "--set", "clock.warnSkew=00:00:00.250",
        "--set", "audit.redis.nodes={audit-redis-0.data.svc:26379,audit-redis-1.data.svc:26379}", "--set", "audit.redis.serviceName=audit",
        "--set", "audit.followPollInterval=00:00:01", "--set", "audit.refusalWindow=00:00:30", "--set", "audit.maxBatch=64", "--set", "audit.checkpointInterval=500", "--set", "audit.maxRecords=10000000", "--set", "audit.maxAge=90.00:00:00",
        "--set", "audit.checkpointKey.existingSecret=audit-checkpoint", "--set", "audit.checkpointKey.key=hmac",
        "--set", "dpop.enabled=false", "--set", "dpop.agentUris={https://credbroker.example.com:5401}", "--set", "dpop.maxProofAge=00:00:30",
        "--set", "dpop.maxProofFuture=00:00:02", "--set", "dpop.maxProofSize=2048", "--set", "dpop.algorithms={ES256,PS256}",
        "--set", "ssf.enabled=false", "--set", "ssf.receivers[0].id=orders-api", "--set", "ssf.receivers[0].secretName=orders-ssf",
        "--set", "ssf.receivers[1].id=billing", "--set", "ssf.receivers[1].audience=https://billing.example.com", "--set", "ssf.receivers[1].secretName=billing-ssf",
        "--set", "ssf.receivers[1].secretKey=token", "--set", "ssf.maxLongPoll=00:01:00", "--set", "ssf.maxEventsPerPoll=100",
        "--set", "ssf.pushTimeout=00:00:05", "--set", "ssf.pushRetryInitial=00:00:01", "--set", "ssf.pushRetryMax=00:01:00",
        "--set", "ssf.streamRefreshInterval=00:00:05", "--set", "ssf.allowHttpPushEndpoints=true", "--set", "ssf.maxStreamsPerReceiver=2",
    ];

    [Test]
    public void NewerOptions_ReachTheBrokersConfiguration()
    {
        var chart = RenderedChart.Render(NewerOptionValues);
        var options = Bind(chart);

        Assert.That((options.Redis.WaitReplicas, options.Redis.WaitTimeout, options.Redis.WaitForLeaseWrites), Is.EqualTo((1, TimeSpan.FromMilliseconds(500), true)));
        Assert.That(options.Redis.Problems(), Is.Empty);
        Assert.That((options.Clock.Source, options.Clock.SyncInterval, options.Clock.WarnSkew), Is.EqualTo(("system", TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(250))));
        Assert.That(options.Clock.Problems(), Is.Empty);
        Assert.That((options.Audit.MaxBatch, options.Audit.CheckpointInterval, options.Audit.MaxRecords, options.Audit.MaxAge), Is.EqualTo((64, 500, 10_000_000L, (TimeSpan?)TimeSpan.FromDays(90))));
        Assert.That(options.Audit.CheckpointKeyFile, Is.EqualTo("/etc/credbroker/audit-checkpoint/checkpoint-key"));
        Assert.That((options.Audit.FollowPollInterval, options.Audit.RefusalWindow), Is.EqualTo((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30))));
        Assert.That(options.Audit.RedisConfiguration, Is.EqualTo("audit-redis-0.data.svc:26379,audit-redis-1.data.svc:26379,serviceName=audit"));
        Assert.That(options.Redis.Configuration, Is.EqualTo("redis-0.data.svc:6379"));
        Assert.That((options.Dpop.Enabled, options.Dpop.MaxProofAge, options.Dpop.MaxProofFuture, options.Dpop.MaxProofSize),
            Is.EqualTo((false, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(2), 2048)));
        Assert.That(options.Dpop.AgentUris, Is.EqualTo(new[] { "https://credbroker.example.com:5401" }));
        Assert.That(options.Dpop.Algorithms, Is.EqualTo(new[] { "ES256", "PS256" }));
        Assert.That(options.DpopProblems(), Is.Empty);
        Assert.That(options.Ssf.Enabled, Is.False);
        Assert.That(options.Ssf.Receivers.Select(r => (r.Id, r.Audience, r.SecretFile)), Is.EqualTo(new[]
        {
            ("orders-api", (string?)null, "/etc/credbroker/ssf/0/secret"),
            ("billing", "https://billing.example.com", "/etc/credbroker/ssf/1/secret"),
        }));
        Assert.That((options.Ssf.MaxLongPoll, options.Ssf.MaxEventsPerPoll, options.Ssf.PushTimeout, options.Ssf.PushRetryInitial, options.Ssf.PushRetryMax),
            Is.EqualTo((TimeSpan.FromMinutes(1), 100, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1))));
        Assert.That((options.Ssf.StreamRefreshInterval, options.Ssf.AllowHttpPushEndpoints, options.Ssf.MaxStreamsPerReceiver), Is.EqualTo((TimeSpan.FromSeconds(5), true, 2)));
        Assert.That(options.Ssf.Problems(), Is.Empty);

        // The secrets come from the named Kubernetes Secrets as files; no value of them is in the chart's configuration.
        var volumes = chart.PodSpec["volumes"]!.AsArray().ToDictionary(v => (string)v!["name"]!, v => v!);
        Assert.That((string?)volumes["audit-checkpoint"]["secret"]!["secretName"], Is.EqualTo("audit-checkpoint"));
        Assert.That((string?)volumes["audit-checkpoint"]["secret"]!["items"]![0]!["key"], Is.EqualTo("hmac"));
        Assert.That((string?)volumes["ssf-receiver-0"]["secret"]!["secretName"], Is.EqualTo("orders-ssf"));
        Assert.That((string?)volumes["ssf-receiver-0"]["secret"]!["items"]![0]!["key"], Is.EqualTo("secret"));
        Assert.That((string?)volumes["ssf-receiver-1"]["secret"]!["items"]![0]!["key"], Is.EqualTo("token"));
    }

    [Test]
    public void AuditChainOnItsOwnRedis_GetsTheSameTlsAndOptions_WithItsOwnServerName()
    {
        string Audit(params string[] extra) =>
            Bind(RenderedChart.Render(["-f", RenderedChart.ProductionValues, "--set", "audit.redis.nodes={audit-redis.data.svc:6379}", .. extra])).Audit.RedisConfiguration!;

        Assert.That(Audit(), Is.EqualTo("audit-redis.data.svc:6379,ssl=true,sslHost=redis-cluster.data.svc,connectTimeout=2000"));
        Assert.That(Audit("--set", "audit.redis.tlsServerName=audit-redis.data.svc"), Is.EqualTo("audit-redis.data.svc:6379,ssl=true,sslHost=audit-redis.data.svc,connectTimeout=2000"));
        Assert.That(Audit(), Does.Not.Contain("password"));
    }

    [Test]
    public void ConsoleSessionAndWebhookDelivery_ReachTheBrokersConfiguration()
    {
        var options = Bind(RenderedChart.Render([.. HelmChartTests.ConsoleValues,
            "--set", "console.sessionLifetime=02:00:00", "--set", "console.webhooks.queueCapacity=50", "--set", "console.webhooks.maxAttempts=3",
            "--set", "console.webhooks.initialBackoff=00:00:02", "--set", "console.webhooks.maxBackoff=00:01:00", "--set", "console.webhooks.timeout=00:00:05"]));
        var webhooks = options.Console.Webhooks;

        Assert.That(options.Console.SessionLifetime, Is.EqualTo(TimeSpan.FromHours(2)));
        Assert.That((webhooks.QueueCapacity, webhooks.MaxAttempts, webhooks.InitialBackoff, webhooks.MaxBackoff, webhooks.Timeout),
            Is.EqualTo((50, 3, TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(5))));
        Assert.That(webhooks.Endpoints.Single().SecretFile, Is.EqualTo("/etc/credbroker/webhooks/0/secret"));
        Assert.That(options.ProductionProblems(), Is.Empty);
    }

    [Test]
    public void NewerOptions_Defaults_AreTheBrokersDefaults()
    {
        var defaults = new BrokerOptions();
        var options = Bind(RenderedChart.Render());

        Assert.That((options.Clock.Source, options.Clock.SyncInterval), Is.EqualTo((defaults.Clock.Source, defaults.Clock.SyncInterval)));
        Assert.That((options.Audit.MaxBatch, options.Audit.CheckpointInterval, options.Audit.MaxAge, options.Audit.CheckpointKeyFile),
            Is.EqualTo((defaults.Audit.MaxBatch, defaults.Audit.CheckpointInterval, defaults.Audit.MaxAge, defaults.Audit.CheckpointKeyFile)));
        Assert.That((options.Dpop.Enabled, options.Dpop.MaxProofAge, options.Dpop.AgentUris.Count), Is.EqualTo((defaults.Dpop.Enabled, defaults.Dpop.MaxProofAge, 0)));
        Assert.That((options.Ssf.Enabled, options.Ssf.Receivers.Count, options.Ssf.MaxEventsPerPoll), Is.EqualTo((defaults.Ssf.Enabled, 0, defaults.Ssf.MaxEventsPerPoll)));
        Assert.That(options.Redis.WaitForLeaseWrites, Is.False);
        Assert.That(options.Audit.RedisConfiguration, Is.Null, "the audit chain shares the lease store's Redis unless audit.redis.nodes is set");
        Assert.That((options.Audit.FollowPollInterval, options.Audit.RefusalWindow), Is.EqualTo((defaults.Audit.FollowPollInterval, defaults.Audit.RefusalWindow)));
        var console = Bind(RenderedChart.Render(HelmChartTests.ConsoleValues)).Console;
        Assert.That((console.SessionLifetime, console.Webhooks.QueueCapacity, console.Webhooks.MaxAttempts, console.Webhooks.Timeout),
            Is.EqualTo((defaults.Console.SessionLifetime, defaults.Console.Webhooks.QueueCapacity, defaults.Console.Webhooks.MaxAttempts, defaults.Console.Webhooks.Timeout)));
    }

    [Test]
    public void NewerOptions_ThatCannotWork_AreRefusedWithAMessage()
    {
        Assert.That(RenderedChart.TryRender("--set", "redis.waitForLeaseWrites=true").Output, Does.Contain("redis.waitForLeaseWrites needs redis.waitReplicas"));
        Assert.That(RenderedChart.TryRender("--set", "ssf.receivers[0].id=orders-api").Output, Does.Contain("secretName"));
        Assert.That(RenderedChart.TryRender("--set", "clock.source=ntp").Output, Does.Contain("/clock/source"));
        Assert.That(RenderedChart.TryRender("--set", "audit.maxBatch=5000").Output, Does.Contain("maxBatch"));
        Assert.That(RenderedChart.TryRender("--set", "dpop.agentUris={https://cb.example.com/?x=1}").Output, Does.Contain("agentUris"));
    }

    public static IEnumerable<TestCaseData> MountCases()
    {
        yield return Case("default values");
        yield return Case("production values", "-f", RenderedChart.ProductionValues);
        yield return Case("existing agents ConfigMap", "--set", "agents.existingConfigMap=my-agents", "--set", "agents.existingConfigMapKey=team.yaml");
        yield return Case("web console with webhooks", HelmChartTests.ConsoleValues);
        yield return Case("audit checkpoint key and SSF receivers", NewerOptionValues);
    }

    [TestCaseSource(nameof(KeyCases))]
    public void EveryRenderedKey_IsABrokerSetting(string[] values)
    {
        var json = JsonNode.Parse(RenderedChart.Render(values).AppSettingsJson)!.AsObject();
        var unknown = new List<string>();

        Assert.That(json.Select(p => p.Key), Is.EqualTo(new[] { "CredBroker" }));
        Walk(json["CredBroker"]!, typeof(BrokerOptions), "CredBroker", unknown);

        Assert.That(unknown, Is.Empty, "keys the broker would silently ignore");
    }

    [Test]
    public void KeyWalk_FlagsAnUnknownKey_SoTheCheckAbove_CanFail()
    {
        var unknown = new List<string>();

        Walk(JsonNode.Parse("""{"Redis":{"Configuration":"x","SentinelServiceName":"m"},"Listen":{"Tls":{"CertFile":"a"}}}""")!, typeof(BrokerOptions), "CredBroker", unknown);

        Assert.That(unknown, Is.EquivalentTo(new[] { "CredBroker:Redis:SentinelServiceName", "CredBroker:Listen:Tls:CertFile" }));
    }

    [TestCaseSource(nameof(MountCases))]
    public void EveryFileTheConfigurationNames_IsMounted(string[] values)
    {
        var chart = RenderedChart.Render(values);
        var options = Bind(chart);
        var mounts = HelmChartTests.Mounts(chart);
        var volumes = chart.PodSpec["volumes"]!.AsArray().ToDictionary(v => (string)v!["name"]!, v => v!);
        var configMapData = chart.Single("ConfigMap")["data"]!.AsObject();
        var files = new List<string?> { options.AgentsFile, options.Redis.PasswordFile, options.Redis.CaFile, options.Listen.Tls?.CertificateFile, options.Listen.Tls?.KeyFile, options.Listen.Tls?.ClientCaFile };
        files.AddRange(options.Signing.KeyFiles);
        files.Add(options.Signing.KeyDirectory is { } keys ? Path.Combine(keys, "any-key.pem") : null);
        files.AddRange(options.Identity.Issuers.Concat(options.Operators.Issuers).Select(i => i.JwksFile));
        files.Add(options.Console.Oidc.ClientSecretFile);
        files.AddRange(options.Console.Webhooks.Endpoints.Select(e => e.SecretFile));
        files.Add(options.Audit.CheckpointKeyFile);
        files.AddRange(options.Ssf.Receivers.Select(r => r.SecretFile));

        foreach (var file in files.OfType<string>())
        {
            var directory = Path.GetDirectoryName(file)!;
            Assert.That(mounts.ContainsKey(directory), Is.True, $"{file}: nothing is mounted at {directory}");
            var volume = volumes[(string)mounts[directory]["name"]!];
            if ((string?)volume["configMap"]?["name"] == "cb-credbroker")
            {
                Assert.That(configMapData.ContainsKey(Path.GetFileName(file)), Is.True, $"{file}: not in the chart's ConfigMap");
            }
        }

        Assert.That((string?)mounts["/app/appsettings.Production.json"]["subPath"], Is.EqualTo("appsettings.Production.json"));
    }

    private static TestCaseData Case(string name, params string[] values) => new TestCaseData((object)values).SetArgDisplayNames(name);

    private static BrokerOptions Bind(RenderedChart chart)
    {
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(chart.AppSettingsJson))).Build();
        return BrokerOptions.Bind(configuration, dev: false);
    }

    /// <summary>Each JSON member must name a public settable property of the options type the binder fills (case-insensitive, as the binder is).</summary>
    private static void Walk(JsonNode node, Type type, string path, List<string> unknown)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (node is JsonArray array)
        {
            var element = type.IsArray ? type.GetElementType()! : type.GetGenericArguments().Single();
            for (var i = 0; i < array.Count; i++)
            {
                Walk(array[i]!, element, $"{path}:{i}", unknown);
            }

            return;
        }

        if (node is not JsonObject obj)
        {
            return;
        }

        foreach (var (key, value) in obj)
        {
            var property = type.GetProperty(key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || (!property.CanWrite && !typeof(IEnumerable).IsAssignableFrom(property.PropertyType)))
            {
                unknown.Add($"{path}:{key}");
                continue;
            }

            if (value is not null)
            {
                Walk(value, property.PropertyType, $"{path}:{key}", unknown);
            }
        }
    }
}
