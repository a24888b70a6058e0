using System.Net;
using CredBroker.Contracts.V1;

namespace CredBroker.Wire.Tests;

/// <summary>Size limits, malformed gRPC framing and protobuf, encodings and content types on the agent listener.</summary>
[TestFixture]
public sealed class LimitsAndFramingTests : WireTest
{
    /// <summary>CredBroker:Listen:Grpc:MaxReceiveMessageSize by default.</summary>
    private const int ReceiveLimit = 64 * 1024;

    [Test]
    public async Task RequestOverTheReceiveLimit_IsResourceExhausted_AndTheConnectionKeepsServing()
    {
        var request = ReadTask();
        request.Purpose = new string('p', ReceiveLimit + 1);
        var response = await UnaryAsync(Broker.Agent, BeginTask, request, DevBroker.AgentAuth);
        AssertStatus(response, Code.ResourceExhausted);
        await AssertServingAsync(Broker.Agent);
    }

    [TestCase("agent")]
    [TestCase("operator")]
    public async Task OverTheReceiveLimit_EvenForAnOpenService_IsResourceExhausted(string listener)
    {
        var address = listener == "agent" ? Broker.Agent : Broker.Operator;
        var response = await UnaryAsync(address, HealthCheck, new Grpc.Health.V1.HealthCheckRequest { Service = new string('s', ReceiveLimit + 1) });
        AssertStatus(response, Code.ResourceExhausted);
        await AssertServingAsync(address);
    }

    [Test]
    public async Task RequestJustUnderTheReceiveLimit_IsRead()
    {
        // Under the limit the message reaches the broker, whose own validation then judges the (silly) purpose.
        var request = new IntrospectRequest { Token = new string('t', ReceiveLimit - 100) };
        var response = await UnaryAsync(Broker.Agent, Introspect, request, DevBroker.AgentAuth);
        Assert.That(response.Status, Is.Not.EqualTo(Code.ResourceExhausted), response.Describe());
        AssertStatus(response, Code.Ok);
        Assert.That(response.Single(IntrospectResponse.Parser).Active, Is.False);
    }

    [Test]
    public async Task DeclaredLengthOverTheLimit_IsRefusedBeforeTheBodyIsSent()
    {
        using var gate = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var content = new PrefixThenWaitContent(Framing.Frame([], declaredLength: 100 * 1024 * 1024)[..5], gate.Token);
        var call = new WireCall(BeginTask, []) { Headers = [DevBroker.AgentAuth] };
        using var request = call.ToRequest(Broker.Agent, content);
        using var response = await Http.SendAsync(request, Bounded);
        var body = await response.Content.ReadAsByteArrayAsync(Bounded);
        var answer = WireResponse.From(response, body);
        Assert.That(gate.IsCancellationRequested, Is.False, "the answer must come while the client still withholds the body: " + answer.Describe());
        AssertStatus(answer, Code.ResourceExhausted);
        await gate.CancelAsync();
        await AssertServingAsync(Broker.Agent);
    }

    [TestCase(new byte[] { 0, 0, 0 }, TestName = "{m}(truncated prefix)")]
    [TestCase(new byte[] { 0, 0, 0, 0, 100, 1, 2, 3 }, TestName = "{m}(prefix declares 100 bytes, 3 arrive)")]
    [TestCase(new byte[] { 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF }, TestName = "{m}(bytes that are not protobuf)")]
    [TestCase(new byte[] { 0, 0, 0, 0, 2, 0x0A, 0x7F }, TestName = "{m}(string field longer than the message)")]
    [TestCase(new byte[] { 1, 0, 0, 0, 2, 0x0A, 0 }, TestName = "{m}(compressed flag without grpc-encoding)")]
    [TestCase(new byte[] { 2, 0, 0, 0, 0 }, TestName = "{m}(invalid flag byte)")]
    public async Task MalformedBody_IsAHandledRefusal_AndTheConnectionKeepsServing(byte[] body)
    {
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, body) { Headers = [DevBroker.AgentAuth] });
        AssertHandledRefusal(response);
        await AssertServingAsync(Broker.Agent);
        var begun = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth);
        AssertStatus(begun, Code.Ok);
    }

    [TestCase(new byte[] { 0, 0, 0, 0, 100, 1, 2, 3 }, TestName = "{m}(prefix declares 100 bytes, 3 arrive)")]
    [TestCase(new byte[] { 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF }, TestName = "{m}(bytes that are not protobuf)")]
    [TestCase(new byte[] { 1, 0, 0, 0, 2, 0x0A, 0 }, TestName = "{m}(compressed flag without grpc-encoding)")]
    public async Task MalformedBody_OnTheOperatorListener_IsAHandledRefusal(byte[] body)
    {
        var response = await SendAsync(Broker.Operator, new WireCall(ListLeases, body) { Headers = [DevBroker.OperatorAuth] });
        AssertHandledRefusal(response);
        AssertStatus(await UnaryAsync(Broker.Operator, ListLeases, new ListLeasesRequest(), DevBroker.OperatorAuth), Code.Ok);
    }

    [Test]
    public async Task TwoMessages_ForAUnaryMethod_AreAHandledRefusal()
    {
        var frame = Framing.Frame(ReadTask("two-messages"));
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, [.. frame, .. frame]) { Headers = [DevBroker.AgentAuth] });
        AssertHandledRefusal(response);
        await AssertServingAsync(Broker.Agent);
    }

    [Test]
    public async Task EmptyBody_ForAUnaryMethod_IsAHandledRefusal()
    {
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, []) { Headers = [DevBroker.AgentAuth] });
        AssertHandledRefusal(response);
    }

    [Test]
    public async Task UnsupportedGrpcEncoding_IsUnimplemented()
    {
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, Framing.Frame(ReadTask(), flag: 1))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-encoding", "snappy")],
        });
        AssertStatus(response, Code.Unimplemented);
        await AssertServingAsync(Broker.Agent);
    }

    [TestCase("text/plain")]
    [TestCase("application/json")]
    [TestCase("application/grpc-web")]
    public async Task WrongContentType_IsHttp415(string contentType)
    {
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, Framing.Frame(ReadTask()))
        {
            ContentType = contentType,
            Headers = [DevBroker.AgentAuth],
        });
        Assert.That(response.HttpStatus, Is.EqualTo((int)HttpStatusCode.UnsupportedMediaType), response.Describe());
    }

    [TestCase("application/grpc+proto")]
    [TestCase("application/grpc")]
    public async Task GrpcContentTypes_AreAccepted(string contentType)
    {
        var response = await SendAsync(Broker.Agent, new WireCall(BeginTask, Framing.Frame(ReadTask()))
        {
            ContentType = contentType,
            Headers = [DevBroker.AgentAuth],
        });
        AssertStatus(response, Code.Ok);
    }

    /// <summary>Sends the 5-byte prefix, then holds the body back until the gate closes (or the client gives up on the request).</summary>
    private sealed class PrefixThenWaitContent(byte[] prefix, CancellationToken gate) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(prefix, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(gate, cancellationToken);
            try
            {
                await Task.Delay(Timeout.Infinite, either.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
