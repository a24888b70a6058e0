using CredBroker.Contracts.V1;

namespace CredBroker.Wire.Tests;

/// <summary>
/// grpc-timeout on unary and streaming methods: tiny deadlines end cleanly, huge or malformed ones
/// fall back to the server's default or cap, and no value gives HTTP 500 or UNKNOWN.
/// </summary>
[TestFixture]
public sealed class DeadlineTests : WireTest
{
    public static readonly string[] UnusualTimeouts = ["99999999H", "abc", "1x", "", "-1S", "123456789S", "1.5S"];

    [TestCase("1n")]
    [TestCase("1u")]
    [TestCase("1m")]
    public async Task TinyTimeout_OnAUnaryCall_IsDeadlineExceededOrCompletes(string timeout)
    {
        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("grpc-timeout", timeout));
        TestContext.Out.WriteLine("answer: " + response.Describe());
        Assert.That(response.HttpStatus, Is.EqualTo(200), response.Describe());
        Assert.That(response.Status, Is.EqualTo(Code.DeadlineExceeded).Or.EqualTo(Code.Ok), response.Describe());
        await AssertServingAsync(Broker.Agent);
    }

    [TestCase("1n")]
    [TestCase("1u")]
    public async Task TinyTimeout_OnAStreamingCall_IsDeadlineExceededOrAnswers(string timeout)
    {
        var call = new WireCall(WatchRevocations, Framing.Frame(new WatchRevocationsRequest { FromNow = true }))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-timeout", timeout)],
        };
        var response = await SendAsync(Broker.Agent, call);
        TestContext.Out.WriteLine("answer: " + response.Describe());
        Assert.That(response.HttpStatus, Is.EqualTo(200), response.Describe());
        Assert.That(response.Status, Is.EqualTo(Code.DeadlineExceeded).Or.EqualTo(Code.Ok), response.Describe());
        await AssertServingAsync(Broker.Agent);
    }

    [TestCaseSource(nameof(UnusualTimeouts))]
    public async Task UnusualTimeout_OnBeginTask_WorksNormally(string timeout)
    {
        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("grpc-timeout", timeout));
        Assert.That(response.Single(BeginTaskResponse.Parser).AccessToken, Is.Not.Empty, response.Describe());
    }

    [TestCaseSource(nameof(UnusualTimeouts))]
    public async Task UnusualTimeout_OnIntrospect_WorksNormally(string timeout)
    {
        var response = await UnaryAsync(Broker.Agent, Introspect, new IntrospectRequest { Token = "not-a-token" }, DevBroker.AgentAuth, ("grpc-timeout", timeout));
        Assert.That(response.Single(IntrospectResponse.Parser).Active, Is.False, response.Describe());
    }

    /// <summary>
    /// A revocation this test caused is replayed on a WatchRevocations stream opened with the
    /// timeout: HTTP 200, an open stream, the event.
    /// </summary>
    [TestCaseSource(nameof(UnusualTimeouts))]
    public async Task UnusualTimeout_OnWatchRevocations_StreamsNormally(string timeout)
    {
        var begun = (await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth)).Single(BeginTaskResponse.Parser);
        AssertStatus(await UnaryAsync(Broker.Agent, CompleteTask, new CompleteTaskRequest { LeaseId = begun.LeaseId }, DevBroker.AgentAuth), Code.Ok);

        var call = new WireCall(WatchRevocations, Framing.Frame(new WatchRevocationsRequest()))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-timeout", timeout)],
        };
        using var stream = await WireStream.OpenAsync(Http, Broker.Agent, call, Bounded);
        Assert.That(stream.HttpStatus, Is.EqualTo(200), stream.Describe());
        Assert.That(stream.TrailersOnlyStatus, Is.Null, "the stream is open, not refused: " + stream.Describe());
        while (true)
        {
            var revocation = await stream.ReadAsync(RevocationEvent.Parser, Bounded);
            Assert.That(revocation, Is.Not.Null, "the stream ended before replaying this test's revocation");
            if (revocation!.LeaseId == begun.LeaseId)
            {
                Assert.That(revocation.Kind, Is.EqualTo("lease"));
                break;
            }
        }
    }

    /// <summary>A demo:admin request waits for approval; WatchApproval opened with the timeout reports it pending.</summary>
    [TestCaseSource(nameof(UnusualTimeouts))]
    public async Task UnusualTimeout_OnWatchApproval_StreamsNormally(string timeout)
    {
        var request = ReadTask();
        request.Scopes.Add("demo:admin");
        var begun = (await UnaryAsync(Broker.Agent, BeginTask, request, DevBroker.AgentAuth)).Single(BeginTaskResponse.Parser);
        Assert.That(begun.ApprovalId, Is.Not.Empty, "demo:admin needs a human's approval in the dev policy");

        var call = new WireCall(WatchApproval, Framing.Frame(new WatchApprovalRequest { ApprovalId = begun.ApprovalId }))
        {
            Headers = [DevBroker.AgentAuth, ("grpc-timeout", timeout)],
        };
        using var stream = await WireStream.OpenAsync(Http, Broker.Agent, call, Bounded);
        Assert.That(stream.HttpStatus, Is.EqualTo(200), stream.Describe());
        Assert.That(stream.TrailersOnlyStatus, Is.Null, "the stream is open, not refused: " + stream.Describe());
        var status = await stream.ReadAsync(ApprovalStatus.Parser, Bounded);
        Assert.That(status, Is.Not.Null, "the stream ended without a status");
        Assert.That(status!.ApprovalId, Is.EqualTo(begun.ApprovalId));
        Assert.That(status.State, Is.EqualTo("pending_approval").Or.EqualTo("pending"));
    }
}
