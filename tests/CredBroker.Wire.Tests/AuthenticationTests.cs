using CredBroker.Contracts.V1;
using Grpc.Health.V1;

namespace CredBroker.Wire.Tests;

/// <summary>Caller authentication on both gRPC listeners: refusals say what to send; the open services need nothing.</summary>
[TestFixture]
public sealed class AuthenticationTests : WireTest
{
    public enum Listener
    {
        Agent,
        Operator,
    }

    private static (Uri Address, string Path, Google.Protobuf.IMessage Request, (string, string) Auth) Target(Listener listener) =>
        listener == Listener.Agent
            ? (Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth)
            : (Broker.Operator, ListLeases, new ListLeasesRequest(), DevBroker.OperatorAuth);

    [TestCase(Listener.Agent)]
    [TestCase(Listener.Operator)]
    public async Task TheListenersOwnSecret_IsAccepted(Listener listener)
    {
        var (address, path, request, auth) = Target(listener);
        var response = await UnaryAsync(address, path, request, auth);
        AssertStatus(response, Code.Ok);
    }

    [TestCase(Listener.Agent)]
    [TestCase(Listener.Operator)]
    public async Task MissingCredentials_AreUnauthenticated_AndSayWhatToSend(Listener listener)
    {
        var (address, path, request, _) = Target(listener);
        var response = await UnaryAsync(address, path, request);
        AssertStatus(response, Code.Unauthenticated);
        Assert.That(response.Message, Does.Contain("authorization").And.Contain("Bearer"), response.Describe());
    }

    [TestCase(Listener.Agent, "Basic dXNlcjpwYXNz")]
    [TestCase(Listener.Agent, "Bearer")]
    [TestCase(Listener.Agent, "Bearer ")]
    [TestCase(Listener.Agent, "token-without-scheme")]
    [TestCase(Listener.Operator, "Basic dXNlcjpwYXNz")]
    [TestCase(Listener.Operator, "Bearer")]
    public async Task MalformedAuthorization_IsUnauthenticated_AndNamesTheExpectedForm(Listener listener, string header)
    {
        var (address, path, request, _) = Target(listener);
        var response = await UnaryAsync(address, path, request, ("authorization", header));
        AssertStatus(response, Code.Unauthenticated);
        Assert.That(response.Message, Does.Contain("Bearer"), response.Describe());
    }

    [TestCase(Listener.Agent)]
    [TestCase(Listener.Operator)]
    public async Task WrongSecret_IsUnauthenticated(Listener listener)
    {
        var (address, path, request, _) = Target(listener);
        var response = await UnaryAsync(address, path, request, ("authorization", "Bearer not-the-secret"));
        AssertStatus(response, Code.Unauthenticated);
        Assert.That(response.Message, Does.Not.Contain(DevBroker.AgentSecret).And.Not.Contain(DevBroker.OperatorSecret));
    }

    [Test]
    public async Task OperatorSecret_OnTheAgentListener_IsRefused()
    {
        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.OperatorAuth);
        AssertStatus(response, Code.Unauthenticated);
    }

    [Test]
    public async Task OperatorSecret_ForTokenValidationOnTheAgentListener_IsRefused()
    {
        var response = await UnaryAsync(Broker.Agent, Introspect, new IntrospectRequest { Token = "x" }, DevBroker.OperatorAuth);
        AssertStatus(response, Code.Unauthenticated);
    }

    [Test]
    public async Task AgentSecret_OnTheOperatorListener_IsRefused()
    {
        var response = await UnaryAsync(Broker.Operator, ListLeases, new ListLeasesRequest(), DevBroker.AgentAuth);
        AssertStatus(response, Code.Unauthenticated);
    }

    [TestCase(Listener.Agent)]
    [TestCase(Listener.Operator)]
    public async Task Health_AnswersWithoutCredentials(Listener listener)
    {
        var response = await UnaryAsync(Target(listener).Address, HealthCheck, new HealthCheckRequest());
        Assert.That(response.Single(HealthCheckResponse.Parser).Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
    }

    [TestCase(Listener.Agent, ReflectionV1)]
    [TestCase(Listener.Agent, ReflectionV1Alpha)]
    [TestCase(Listener.Operator, ReflectionV1)]
    [TestCase(Listener.Operator, ReflectionV1Alpha)]
    public async Task Reflection_AnswersWithoutCredentials(Listener listener, string path)
    {
        var services = await Reflection.ListServicesAsync(Http, Target(listener).Address, path, Bounded);
        Assert.That(services, Is.Not.Empty);
    }
}
