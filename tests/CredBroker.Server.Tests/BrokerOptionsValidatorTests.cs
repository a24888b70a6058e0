using CredBroker.Server.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CredBroker.Server.Tests;

/// <summary>The options system validates the CredBroker section; every failure names the setting to fix.</summary>
[TestFixture]
public sealed class BrokerOptionsValidatorTests
{
    private static BrokerOptions Bind(bool dev, params (string Key, string Value)[] settings) =>
        BrokerOptions.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build(), dev);

    [Test]
    public void Production_WithNothingConfigured_FailsNamingEachMissingSetting()
    {
        var result = new BrokerOptionsValidator().Validate(null, Bind(dev: false));

        Assert.That(result.Failed, Is.True);
        Assert.That(result.Failures, Has.Some.Contains("CredBroker:Redis:Configuration"));
        Assert.That(result.Failures, Has.Some.Contains("CredBroker:AgentsFile"));
        Assert.That(result.Failures, Has.Some.Contains("CredBroker:Signing:KeyFiles"));
        Assert.That(result.Failures, Has.Some.Contains("CredBroker:Identity:Issuers"));
    }

    [TestCase("00:00:05", true)]
    [TestCase("2.00:00:00", true)]
    [TestCase("00:00:00", false)]
    [TestCase("00:10:00", false)]
    public void Production_StartupGrace_IsOffOrBetween10SecondsAnd24Hours(string grace, bool refused)
    {
        var result = new BrokerOptionsValidator().Validate(null, Bind(dev: false, ("CredBroker:Health:StartupGrace", grace)));

        Assert.That(result.Failures ?? [], refused ? Has.Some.Contains("CredBroker:Health:StartupGrace") : Has.None.Contains("CredBroker:Health:StartupGrace"));
    }

    [Test]
    public void DevMode_NeedsNothing_ButRefusesDelegationSettingsThatCannotWork()
    {
        Assert.That(new BrokerOptionsValidator().Validate(null, Bind(dev: true)).Succeeded, Is.True);

        var bad = new BrokerOptionsValidator().Validate(null, Bind(dev: true, ("CredBroker:Delegation:MaxDepth", "99")));
        Assert.That(bad.Failed, Is.True);
        Assert.That(bad.Failures, Has.Some.Contains("CredBroker:Delegation:MaxDepth"));
    }

    [Test]
    public void TheBrokerRegistersTheValidatedOptions_AndRefusesToBuildWithBadOnes()
    {
        var app = BrokerApp.Create(["--dev", "--CredBroker:Listen:HttpPort=0", "--CredBroker:Listen:AgentPort=0", "--CredBroker:Listen:OperatorPort=0"], TextWriter.Null);
        var options = ((IServiceProvider)app.Services).GetService(typeof(IOptions<BrokerOptions>)) as IOptions<BrokerOptions>;
        Assert.That(options!.Value.Dev, Is.True, "bound through the options system (BindConfiguration) with --dev applied");

        var error = Assert.Throws<StartupException>(() => BrokerApp.Create(["--dev", "--CredBroker:Delegation:MaxDepth=-1"], TextWriter.Null));
        Assert.That(error!.Message, Does.Contain("CredBroker:Delegation:MaxDepth"));
    }
}
