using CredBroker.Contracts.V1;
using Google.Protobuf;
using Grpc.Health.V1;

namespace CredBroker.Wire.Tests;

/// <summary>Base of the wire fixtures: the shared dev broker, a fresh h2c client per test, and the paths called.</summary>
public abstract class WireTest
{
    public const string BeginTask = "/credbroker.v1.AgentBroker/BeginTask";
    public const string WatchApproval = "/credbroker.v1.AgentBroker/WatchApproval";
    public const string CompleteTask = "/credbroker.v1.AgentBroker/CompleteTask";
    public const string Introspect = "/credbroker.v1.TokenValidation/Introspect";
    public const string WatchRevocations = "/credbroker.v1.TokenValidation/WatchRevocations";
    public const string ListLeases = "/credbroker.v1.Operator/ListLeases";
    public const string HealthCheck = "/grpc.health.v1.Health/Check";
    public const string ReflectionV1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    public const string ReflectionV1Alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

    protected static DevBroker Broker => SharedBroker.Instance;

    protected HttpClient Http { get; private set; } = null!;

    /// <summary>Bounds every call of a test, so a hung server fails the test instead of the run.</summary>
    protected CancellationToken Bounded { get; private set; }

    private CancellationTokenSource? _bound;

    [SetUp]
    public void NewClient()
    {
        Http = H2c.Client();
        _bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        Bounded = _bound.Token;
    }

    [TearDown]
    public void DisposeClient()
    {
        Http.Dispose();
        _bound?.Dispose();
    }

    protected Task<WireResponse> SendAsync(Uri listener, WireCall call) => call.SendAsync(Http, listener, Bounded);

    protected Task<WireResponse> UnaryAsync(Uri listener, string path, IMessage request, params (string Name, string Value)[] headers) =>
        SendAsync(listener, WireCall.Unary(path, request, headers));

    /// <summary>A BeginTask the dev policy grants (demo:read on demo-api), as the dev agent.</summary>
    protected static BeginTaskRequest ReadTask(string? taskId = null) =>
        new() { TaskId = taskId ?? "wire-" + Guid.NewGuid().ToString("N"), Scopes = { "demo:read" }, Audience = "demo-api" };

    /// <summary>A call that works on a healthy broker, to prove it still serves after abuse (on this client's connection).</summary>
    protected async Task AssertServingAsync(Uri listener, HttpClient? http = null)
    {
        var response = await WireCall.Unary(HealthCheck, new HealthCheckRequest()).SendAsync(http ?? Http, listener, Bounded);
        Assert.That(response.Single(HealthCheckResponse.Parser).Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving), response.Describe());
    }

    /// <summary>The refusal every wire test accepts as "handled": HTTP 200 and a gRPC status that is neither OK nor UNKNOWN.</summary>
    protected static void AssertHandledRefusal(WireResponse response)
    {
        TestContext.Out.WriteLine("answer: " + response.Describe());
        Assert.That(response.HttpStatus, Is.EqualTo(200), response.Describe());
        Assert.That(response.Status, Is.Not.Null.And.Not.EqualTo(Code.Ok).And.Not.EqualTo(Code.Unknown), response.Describe());
    }

    protected static void AssertStatus(WireResponse response, Code code)
    {
        TestContext.Out.WriteLine("answer: " + response.Describe());
        Assert.That(response.HttpStatus, Is.EqualTo(200), response.Describe());
        Assert.That(response.Status, Is.EqualTo(code), response.Describe());
    }
}
