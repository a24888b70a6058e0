namespace CredBroker.Testing;

/// <summary>A production-mode broker on its own private Redis, with the fixture's agents and arguments.</summary>
public abstract class ProductionBrokerFixtureBase
{
    protected RedisServer RedisUnderTest { get; private set; } = null!;

    protected ProductionBroker Broker { get; private set; } = null!;

    /// <summary>The policy file's agents (default: <see cref="ProductionBroker.AgentsYaml"/>).</summary>
    protected virtual string AgentsYaml => ProductionBroker.AgentsYaml;

    /// <summary>More broker arguments, e.g. workload mappings for the fixture's extra agents.</summary>
    protected virtual string[] BrokerArguments => [];

    protected async Task StartAsync()
    {
        RedisUnderTest = RedisServer.Start();
        Broker = new ProductionBroker(AgentsYaml);
        await Broker.StartAsync(RedisUnderTest.ConnectionString, BrokerArguments);
    }

    protected async Task StopAsync()
    {
        await Broker.DisposeAsync();
        RedisUnderTest.Dispose();
    }
}

/// <summary>A fixture whose tests share one production-mode broker on one private Redis.</summary>
public abstract class ProductionBrokerFixture : ProductionBrokerFixtureBase
{
    [OneTimeSetUp]
    public Task StartBrokerAsync() => StartAsync();

    [OneTimeTearDown]
    public Task StopBrokerAsync() => StopAsync();
}

/// <summary>A fresh production-mode broker and Redis for every test (tests that quarantine, flood or race).</summary>
public abstract class PerTestProductionBrokerFixture : ProductionBrokerFixtureBase
{
    [SetUp]
    public Task StartBrokerAsync() => StartAsync();

    [TearDown]
    public Task StopBrokerAsync() => StopAsync();
}
