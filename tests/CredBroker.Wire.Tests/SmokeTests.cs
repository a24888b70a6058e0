using CredBroker.Contracts.V1;

namespace CredBroker.Wire.Tests;

[TestFixture]
public sealed class SmokeTests : WireTest
{
    [Test]
    public async Task BeginTask_WithTheDevSecret_GrantsAToken()
    {
        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth);
        var begun = response.Single(BeginTaskResponse.Parser);
        Assert.That(begun.AccessToken, Is.Not.Empty);
    }
}
