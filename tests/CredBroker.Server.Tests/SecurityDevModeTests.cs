using CredBroker.Server.Hosting;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 18: dev mode (printed secrets, in-memory everything) refuses a non-loopback listen
/// address unless forced with CredBroker:DevAllowNonLoopback=true, which prints a loud warning. The
/// brokers here are built, never started: nothing binds a non-loopback address.
/// </summary>
[TestFixture]
public sealed class SecurityDevModeTests
{
    private static string[] Arguments(string address, params string[] extra) =>
    [
        "--dev",
        $"--CredBroker:Listen:Address={address}",
        $"--CredBroker:Listen:HttpPort={RedisServer.FreePort()}",
        $"--CredBroker:Listen:AgentPort={RedisServer.FreePort()}",
        $"--CredBroker:Listen:OperatorPort={RedisServer.FreePort()}",
        "--CredBroker:Listen:ConsolePort=0",
        .. extra,
    ];

    [TestCase("0.0.0.0")]
    [TestCase("::")]
    [TestCase("192.0.2.10")]
    public void DevMode_NonLoopbackAddress_IsRefused(string address)
    {
        var error = Assert.Throws<StartupException>(() => BrokerApp.Create(Arguments(address), TextWriter.Null));

        Assert.That(error!.Message, Does.Contain("loopback").And.Contain("CredBroker:DevAllowNonLoopback"));
    }

    [Test]
    public async Task DevMode_NonLoopbackAddress_Forced_WarnsLoudly()
    {
        using var console = new StringWriter();

        var app = BrokerApp.Create(Arguments("0.0.0.0", "--CredBroker:DevAllowNonLoopback=true"), console);
        await app.DisposeAsync();

        Assert.That(console.ToString(), Does.Contain("WARNING: DEV MODE IS LISTENING ON A NON-LOOPBACK ADDRESS (0.0.0.0)"));
    }

    [TestCase("127.0.0.1")]
    [TestCase("::1")]
    public async Task DevMode_Loopback_StartsWithoutWarning(string address)
    {
        using var console = new StringWriter();

        var app = BrokerApp.Create(Arguments(address), console);
        await app.DisposeAsync();

        Assert.That(console.ToString(), Does.Not.Contain("WARNING"));
    }
}
