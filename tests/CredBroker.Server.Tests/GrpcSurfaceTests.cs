using System.Diagnostics;
using System.Buffers.Binary;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Testing.Grpc;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Health.V1;
using Grpc.Reflection.V1;

namespace CredBroker.Server.Tests;

/// <summary>The broker's gRPC surface beyond its own RPCs: error details, open health and reflection, TLS and mTLS listeners.</summary>
[TestFixture]
[NonParallelizable]
public sealed class GrpcSurfaceTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    /// <summary>grpc.health.v1.Health/Check on a plain call invoker (no credentials: health answers without them).</summary>
    private static readonly Method<HealthCheckRequest, HealthCheckResponse> HealthCheck = new(MethodType.Unary, "grpc.health.v1.Health", "Check",
        Marshallers.Create((HealthCheckRequest m) => m.ToByteArray(), HealthCheckRequest.Parser.ParseFrom),
        Marshallers.Create((HealthCheckResponse m) => m.ToByteArray(), HealthCheckResponse.Parser.ParseFrom));

    [Test]
    public async Task PolicyDenial_CarriesErrorInfoWithTheRuleIds()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Triage);

        var error = await Refused.CallAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "t1", Scopes = { "tickets:delete" } }));

        var info = error.GetDetail<ErrorInfo>();
        Assert.That(info, Is.Not.Null, "PERMISSION_DENIED carries a google.rpc.ErrorInfo in grpc-status-details-bin");
        Assert.That(info!.Reason, Is.EqualTo("POLICY_DENIED"));
        Assert.That(info.Domain, Is.EqualTo("credbroker.dev"));
        Assert.That(info.Metadata["rules"], Does.Contain("agent.disallowed_scope"));
    }

    [Test]
    public async Task HealthAndReflection_AnswerWithoutCredentials_OnBothListeners_AndHealthFollowsRedis()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var http = new HttpClient();
        using var agent = GrpcChannel.ForAddress(broker.AgentAddress);
        using var operatorListener = GrpcChannel.ForAddress(new Uri($"http://127.0.0.1:{broker.OperatorPort}"));

        foreach (var listener in new[] { agent, operatorListener })
        {
            var health = await listener.CreateCallInvoker().AsyncUnaryCall(HealthCheck, null, new CallOptions(), new HealthCheckRequest());
            Assert.That(health.Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
        }

        var services = await ListServicesAsync(http, broker.AgentAddress);
        Assert.That(services, Is.SupersetOf(new[]
        {
            "credbroker.v1.AgentBroker", "credbroker.v1.TokenValidation", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
        }));
        Assert.That(await ListServicesAsync(http, new Uri($"http://127.0.0.1:{broker.OperatorPort}")), Does.Not.Contain("credbroker.v1.AgentBroker"),
            "agent services are not served on the operator listener");

        redis.Kill();
        // Health is refreshed in the background (a probe costs no Redis round trip): wait for it to notice.
        var down = await agent.CreateCallInvoker().AsyncUnaryCall(HealthCheck, null, new CallOptions(), new HealthCheckRequest { Service = "credbroker.v1.AgentBroker" });
        for (var waited = Stopwatch.StartNew(); down.Status == HealthCheckResponse.Types.ServingStatus.Serving && waited.Elapsed < TimeSpan.FromSeconds(30);)
        {
            await Task.Delay(100);
            down = await agent.CreateCallInvoker().AsyncUnaryCall(HealthCheck, null, new CallOptions(), new HealthCheckRequest { Service = "credbroker.v1.AgentBroker" });
        }

        Assert.That(down.Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.NotServing));
    }

    [Test]
    public async Task Tls_AgentListenerServesH2OverTls_AndRefusesCleartext()
    {
        using var redis = RedisServer.Start();
        using var certificates = TestCertificates.Create();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString,
            $"--CredBroker:Listen:Tls:CertificateFile={certificates.ServerCertFile}",
            $"--CredBroker:Listen:Tls:KeyFile={certificates.ServerKeyFile}");

        var tlsAddress = new Uri($"https://localhost:{broker.AgentPort}");
        using var client = new Client.CredBrokerClient(tlsAddress, () => broker.WorkloadToken(Triage), trustedRoot: certificates.Ca);
        var begun = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "over-tls", Scopes = { "tickets:read" } });
        Assert.That(begun.AccessToken, Is.Not.Empty);

        using var cleartext = broker.ClientFor(Triage);
        var error = Assert.ThrowsAsync<RpcException>(() => cleartext.BeginTaskAsync(new BeginTaskRequest { TaskId = "h2c", Scopes = { "tickets:read" } }));
        Refused.AssertTransport(error);
    }

    [Test]
    public async Task MutualTls_RequiresAClientCertificateFromTheConfiguredCa()
    {
        using var redis = RedisServer.Start();
        using var certificates = TestCertificates.Create();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString,
            $"--CredBroker:Listen:Tls:CertificateFile={certificates.ServerCertFile}",
            $"--CredBroker:Listen:Tls:KeyFile={certificates.ServerKeyFile}",
            $"--CredBroker:Listen:Tls:ClientCaFile={certificates.CaFile}");
        var address = new Uri($"https://localhost:{broker.AgentPort}");

        using var withCertificate = new Client.CredBrokerClient(address, () => broker.WorkloadToken(Triage), certificates.Client, certificates.Ca);
        Assert.That((await withCertificate.BeginTaskAsync(new BeginTaskRequest { TaskId = "mtls", Scopes = { "tickets:read" } })).AccessToken, Is.Not.Empty);

        foreach (var certificate in new[] { null, certificates.RogueClient })
        {
            using var client = new Client.CredBrokerClient(address, () => broker.WorkloadToken(Triage), certificate, certificates.Ca);
            var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "refused", Scopes = { "tickets:read" } }));
            Refused.AssertTransport(error);
        }
    }

    [Test]
    public void Production_CleartextOnANonLoopbackAddress_RefusesToStart()
    {
        var error = Assert.Throws<Hosting.StartupException>(() => Hosting.BrokerApp.Create(["--CredBroker:Listen:Address=0.0.0.0"], TextWriter.Null));
        Assert.That(error!.Message, Does.Contain("CredBroker:Listen:Tls"));
    }

    private static async Task<List<string>> ListServicesAsync(HttpClient http, Uri address)
    {
        // Reflection is a bidi stream; one request then half-close is all a listing needs.
        var request = new ServerReflectionRequest { ListServices = "*" }.ToByteArray();
        var frame = new byte[5 + request.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)request.Length);
        request.CopyTo(frame, 5);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(address, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"))
        {
            Version = System.Net.HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        message.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
        using var response = await http.SendAsync(message);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.That(response.TrailingHeaders.NonValidated.Concat(response.Headers.NonValidated).FirstOrDefault(h => h.Key == "grpc-status").Value.ToString(), Is.EqualTo("0"),
            string.Join("; ", response.Headers.NonValidated.Select(h => h.Key + "=" + h.Value)));
        var length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1, 4));
        return ServerReflectionResponse.Parser.ParseFrom(body.AsSpan(5, length)).ListServicesResponse.Service.Select(s => s.Name).ToList();
    }
}
