using Google.Protobuf;
using CredBroker.Contracts.V1;

namespace CredBroker.Wire.Tests;

/// <summary>gzip on the agent listener: compressed requests, responses per grpc-accept-encoding and CompressResponses, bombs.</summary>
[TestFixture]
public sealed class CompressionTests : WireTest
{
    private static WireCall GzipCall(string path, IMessage message, string? acceptEncoding) =>
        new(path, Framing.Frame(Framing.Gzip(message.ToByteArray()), flag: 1))
        {
            Headers = acceptEncoding is null
                ? [DevBroker.AgentAuth, ("grpc-encoding", "gzip")]
                : [DevBroker.AgentAuth, ("grpc-encoding", "gzip"), ("grpc-accept-encoding", acceptEncoding)],
        };

    [Test]
    public async Task GzipRequest_IsAccepted()
    {
        var response = await SendAsync(Broker.Agent, GzipCall(BeginTask, ReadTask(), acceptEncoding: "identity"));
        Assert.That(response.Single(BeginTaskResponse.Parser).AccessToken, Is.Not.Empty);
    }

    [TestCase("identity")]
    [TestCase(null)]
    public async Task ResponseIsNeverGzip_WhenTheClientDoesNotAcceptIt(string? acceptEncoding)
    {
        var response = await SendAsync(Broker.Agent, GzipCall(BeginTask, ReadTask(), acceptEncoding));
        AssertStatus(response, Code.Ok);
        Assert.That(response.Headers.GetValueOrDefault("grpc-encoding", "identity"), Is.EqualTo("identity"), response.Describe());
        Assert.That(Framing.Split(response.Body).Select(m => m.Compressed), Has.All.False);
    }

    [Test]
    public async Task ByDefault_ResponsesAreConsistent_WhenTheClientAcceptsGzip()
    {
        // CompressResponses is off by default: the broker may answer plain; whatever it does, the
        // flag and grpc-encoding agree and the message decodes.
        var response = await SendAsync(Broker.Agent, GzipCall(BeginTask, ReadTask(), acceptEncoding: "gzip,identity"));
        AssertStatus(response, Code.Ok);
        var compressed = Framing.Split(response.Body).Single().Compressed;
        Assert.That(response.Headers.GetValueOrDefault("grpc-encoding", "identity"), Is.EqualTo(compressed ? "gzip" : "identity"), response.Describe());
        Assert.That(response.Single(BeginTaskResponse.Parser).AccessToken, Is.Not.Empty);
    }

    [Test]
    public async Task WithCompressResponses_TheResponseIsGzip_OnlyWhenTheClientAcceptsIt()
    {
        await using var broker = await DevBroker.StartAsync("--CredBroker:Listen:Grpc:CompressResponses=true");
        var plainRequest = new WireCall(BeginTask, Framing.Frame(ReadTask())) { Headers = [DevBroker.AgentAuth, ("grpc-accept-encoding", "gzip")] };

        var gzipped = await SendAsync(broker.Agent, plainRequest);
        AssertStatus(gzipped, Code.Ok);
        Assert.That(gzipped.Headers.GetValueOrDefault("grpc-encoding"), Is.EqualTo("gzip"), gzipped.Describe());
        Assert.That(Framing.Split(gzipped.Body).Single().Compressed, Is.True, "the response message is flagged compressed");
        Assert.That(gzipped.Single(BeginTaskResponse.Parser).AccessToken, Is.Not.Empty);

        var plain = await SendAsync(broker.Agent, plainRequest with { Headers = [DevBroker.AgentAuth, ("grpc-accept-encoding", "identity")] });
        AssertStatus(plain, Code.Ok);
        Assert.That(plain.Headers.GetValueOrDefault("grpc-encoding", "identity"), Is.EqualTo("identity"), plain.Describe());
        Assert.That(Framing.Split(plain.Body).Single().Compressed, Is.False);
    }

    [Test]
    public async Task GzipBomb_IsResourceExhausted_AndTheBrokerStaysHealthy()
    {
        var inflated = new IntrospectRequest { Token = new string('a', 16 * 1024 * 1024) }.ToByteArray();
        var bomb = Framing.Gzip(inflated);
        Assert.That(bomb.Length, Is.LessThan(64 * 1024), "the compressed message itself is under the receive limit");
        var response = await SendAsync(Broker.Agent, new WireCall(Introspect, Framing.Frame(bomb, flag: 1))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-encoding", "gzip")],
        });
        AssertStatus(response, Code.ResourceExhausted);
        await AssertServingAsync(Broker.Agent);
        using var fresh = H2c.Client();
        await AssertServingAsync(Broker.Agent, fresh);
    }

    /// <summary>gzip that does not inflate to the whole message (cut short, or garbage after a valid header) is refused, never read as a shorter message.</summary>
    [TestCase("truncated")]
    [TestCase("garbage")]
    public async Task CorruptGzip_IsAHandledRefusal(string damage)
    {
        var gzip = Framing.Gzip(ReadTask().ToByteArray());
        var corrupt = damage == "truncated" ? gzip[..(gzip.Length / 2)] : [.. gzip[..10], .. Enumerable.Repeat((byte)0xFF, 40)];
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, Framing.Frame(corrupt, flag: 1))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-encoding", "gzip")],
        });
        AssertHandledRefusal(response);
        await AssertServingAsync(Broker.Agent);
    }

    /// <summary>
    /// A gzip stream cut short after its header inflates to nothing. Read as an empty message, the
    /// call would become a different request (here: Check for "" instead of an unknown service, so
    /// SERVING instead of NOT_FOUND); the broker must refuse it as a corrupt message instead.
    /// </summary>
    [Test]
    public async Task GzipCutAfterItsHeader_IsRefused_NotReadAsAnEmptyMessage()
    {
        var gzip = Framing.Gzip(new Grpc.Health.V1.HealthCheckRequest { Service = "credbroker.v1.NoSuchService" }.ToByteArray());
        var response = await SendAsync(Broker.Agent, new WireCall(HealthCheck, Framing.Frame(gzip[..10], flag: 1))
        {
            Headers = [("grpc-encoding", "gzip")],
        });
        AssertHandledRefusal(response);
        Assert.That(response.Status, Is.Not.EqualTo(Code.NotFound), "the request was not read at all, let alone as Check for the unknown service");
        await AssertServingAsync(Broker.Agent);
    }
}
