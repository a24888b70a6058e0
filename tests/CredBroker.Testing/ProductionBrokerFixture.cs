namespace CredBroker.Testing;

/// <summary>A fixture whose tests share one production-mode broker on one private Redis.</summary>
public abstract class ProductionBrokerFixture
{
    protected RedisServer RedisUnderTest { get; private set; } = null!;

    protected ProductionBroker Broker { get; private set; } = null!;

    /// <summary>The policy file's agents (default: <see cref="ProductionBroker.AgentsYaml"/>).</summary>
    protected virtual string AgentsYaml => ProductionBroker.AgentsYaml;

    /// <summary>More broker arguments, e.g. workload mappings for the fixture's extra agents.</summary>
    protected virtual string[] BrokerArguments => [];

    [OneTimeSetUp]
    public async Task StartBrokerAsync()
    {
        RedisUnderTest = RedisServer.Start();
        Broker = new ProductionBroker(AgentsYaml);
        await Broker.StartAsync(RedisUnderTest.ConnectionString, BrokerArguments);
    }

    [OneTimeTearDown]
    public async Task StopBrokerAsync()
    {
        await Broker.DisposeAsync();
        RedisUnderTest.Dispose();
    }
}
