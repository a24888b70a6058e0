using CredBroker.Contracts.V1;
using Grpc.Health.V1;

namespace CredBroker.Wire.Tests;

/// <summary>What each listener serves: unknown names are UNIMPLEMENTED, Operator never exists on the agent port, reflection and health match.</summary>
[TestFixture]
public sealed class ServiceSetTests : WireTest
{
    private static readonly string[] OpenServices =
        ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

    [Test]
    public async Task UnknownMethod_OfAServedService_IsUnimplemented()
    {
        var response = await UnaryAsync(Broker.Agent, "/credbroker.v1.AgentBroker/NoSuchMethod", new BeginTaskRequest(), DevBroker.AgentAuth);
        AssertStatus(response, Code.Unimplemented);
    }

    [Test]
    public async Task UnknownService_IsUnimplemented_OnBothListeners()
    {
        foreach (var (listener, auth) in new[] { (Broker.Agent, DevBroker.AgentAuth), (Broker.Operator, DevBroker.OperatorAuth) })
        {
            var response = await UnaryAsync(listener, "/credbroker.v1.NoSuchService/Anything", new BeginTaskRequest(), auth);
            AssertStatus(response, Code.Unimplemented);
        }
    }

    [TestCase("agent")]
    [TestCase("operator")]
    [TestCase("none")]
    public async Task OperatorService_OnTheAgentListener_IsUnimplemented_WhateverTheCredential(string credential)
    {
        (string, string)[] auth = credential switch
        {
            "agent" => [DevBroker.AgentAuth],
            "operator" => [DevBroker.OperatorAuth],
            _ => [],
        };
        var response = await UnaryAsync(Broker.Agent, ListLeases, new ListLeasesRequest(), auth);
        AssertStatus(response, Code.Unimplemented);
    }

    [Test]
    public async Task AgentServices_OnTheOperatorListener_AreUnimplemented()
    {
        var begin = await UnaryAsync(Broker.Operator, BeginTask, ReadTask(), DevBroker.OperatorAuth);
        AssertStatus(begin, Code.Unimplemented);
        var introspect = await UnaryAsync(Broker.Operator, Introspect, new IntrospectRequest { Token = "x" }, DevBroker.OperatorAuth);
        AssertStatus(introspect, Code.Unimplemented);
    }

    [TestCase(ReflectionV1)]
    [TestCase(ReflectionV1Alpha)]
    public async Task Reflection_OnTheAgentListener_ListsAgentServices_ButNotOperator(string path)
    {
        var services = await Reflection.ListServicesAsync(Http, Broker.Agent, path, Bounded);
        Assert.That(services, Is.SupersetOf(new[] { "credbroker.v1.AgentBroker", "credbroker.v1.TokenValidation" }.Concat(OpenServices)));
        Assert.That(services, Has.None.StartsWith("credbroker.v1.Operator"));
    }

    [TestCase(ReflectionV1)]
    [TestCase(ReflectionV1Alpha)]
    public async Task Reflection_OnTheOperatorListener_ListsOperator_ButNotAgentServices(string path)
    {
        var services = await Reflection.ListServicesAsync(Http, Broker.Operator, path, Bounded);
        Assert.That(services, Is.SupersetOf(new[] { "credbroker.v1.Operator" }.Concat(OpenServices)));
        Assert.That(services, Does.Not.Contain("credbroker.v1.AgentBroker").And.Not.Contain("credbroker.v1.TokenValidation"));
    }

    [TestCase("credbroker.v1.AgentBroker")]
    [TestCase("credbroker.v1.AgentBroker.BeginTask")]
    [TestCase("credbroker.v1.BeginTaskRequest")]
    public async Task FileContainingSymbol_ForAnAgentBrokerSymbol_ReturnsItsFile(string symbol)
    {
        var response = await Reflection.FileContainingSymbolAsync(Http, Broker.Agent, symbol, Bounded);
        Assert.That(response.ErrorResponse, Is.Null, response.ErrorResponse?.ErrorMessage);
        var files = Reflection.Files(response).ToList();
        var file = files.FirstOrDefault(f => f.Service.Any(s => s.Name == "AgentBroker"));
        Assert.That(file, Is.Not.Null, "the file defining AgentBroker: " + string.Join(", ", files.Select(f => f.Name)));
        Assert.That(file!.Package, Is.EqualTo("credbroker.v1"));
        Assert.That(file.Service.Single(s => s.Name == "AgentBroker").Method.Select(m => m.Name),
            Is.SupersetOf(new[] { "BeginTask", "IssueToken", "RenewLease", "CompleteTask", "WatchApproval" }));
    }

    [Test]
    public async Task FileContainingSymbol_ForOperator_OnTheAgentListener_RevealsNothing()
    {
        var response = await Reflection.FileContainingSymbolAsync(Http, Broker.Agent, "credbroker.v1.Operator", Bounded);
        Assert.That(Reflection.Files(response).SelectMany(f => f.Service).Select(s => s.Name), Does.Not.Contain("Operator"));
        Assert.That(response.ErrorResponse, Is.Not.Null, "an unknown symbol is answered with an error response");
        Assert.That(response.ErrorResponse.ErrorCode, Is.EqualTo((int)Code.NotFound));
    }

    [TestCase("")]
    [TestCase("credbroker.v1.AgentBroker")]
    [TestCase("credbroker.v1.TokenValidation")]
    public async Task Health_OnTheAgentListener_IsServing(string service)
    {
        var response = await UnaryAsync(Broker.Agent, HealthCheck, new HealthCheckRequest { Service = service });
        Assert.That(response.Single(HealthCheckResponse.Parser).Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
    }

    [TestCase("")]
    [TestCase("credbroker.v1.Operator")]
    public async Task Health_OnTheOperatorListener_IsServing(string service)
    {
        var response = await UnaryAsync(Broker.Operator, HealthCheck, new HealthCheckRequest { Service = service });
        Assert.That(response.Single(HealthCheckResponse.Parser).Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
    }

    [TestCase("agent", "credbroker.v1.NoSuchService")]
    [TestCase("agent", "credbroker.v1.Operator")]
    [TestCase("operator", "credbroker.v1.NoSuchService")]
    [TestCase("operator", "credbroker.v1.AgentBroker")]
    public async Task Health_ForAServiceTheListenerDoesNotServe_IsNotFound(string listener, string service)
    {
        var response = await UnaryAsync(listener == "agent" ? Broker.Agent : Broker.Operator, HealthCheck, new HealthCheckRequest { Service = service });
        AssertStatus(response, Code.NotFound);
    }
}
