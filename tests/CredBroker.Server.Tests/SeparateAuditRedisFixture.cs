using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// A fresh production broker per test whose audit chain lives on its own redis-server (with AOF), so a
/// test can stop, restart or tamper with the audit store while the lease store stays up.
/// </summary>
public abstract class SeparateAuditRedisFixture
{
    protected RedisServer LeaseRedis { get; private set; } = null!;

    protected RedisServer AuditRedis { get; private set; } = null!;

    protected ProductionBroker Broker { get; private set; } = null!;

    [SetUp]
    public async Task StartBrokerAsync()
    {
        LeaseRedis = RedisServer.Start();
        AuditRedis = RedisServer.Start(appendOnly: true);
        Broker = new ProductionBroker();
        await Broker.StartAsync(LeaseRedis.ConnectionString, $"--CredBroker:Audit:RedisConfiguration={AuditRedis.ConnectionString}");
    }

    [TearDown]
    public async Task StopBrokerAsync()
    {
        await Broker.DisposeAsync();
        AuditRedis.Dispose();
        LeaseRedis.Dispose();
    }
}
