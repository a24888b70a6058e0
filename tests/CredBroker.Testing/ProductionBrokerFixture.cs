namespace CredBroker.Testing;

/// <summary>A fixture whose tests share one production-mode broker on one private Redis.</summary>
public abstract class ProductionBrokerFixture
{
    protected RedisServer RedisUnderTest { get; private set; } = null!;

    protected ProductionBroker Broker { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartBrokerAsync()
    {
        RedisUnderTest = RedisServer.Start();
        Broker = new ProductionBroker();
        await Broker.StartAsync(RedisUnderTest.ConnectionString);
    }

    [OneTimeTearDown]
    public async Task StopBrokerAsync()
    {
        await Broker.DisposeAsync();
        RedisUnderTest.Dispose();
    }
}
