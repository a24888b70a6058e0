using System.Net;
using CredBroker.Server.Hosting;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>CredBroker:Redis:PasswordFile and CaFile through the real composition root (the settings the Helm chart renders).</summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisSettingsTests
{
    private RedisServer _redis = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public void StartRedisWithPassword()
    {
        _redis = RedisServer.Start(appendOnly: false, RedisServer.FreePort(), "--requirepass \"p@ss,word=1\"");
        _dir = Directory.CreateTempSubdirectory("credbroker-redis-settings-").FullName;
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _redis.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public async Task PasswordFromAFile_BrokerBecomesReady()
    {
        var file = Write("password", "p@ss,word=1\n");
        await using var broker = new ProductionBroker();

        await broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:PasswordFile={file}");

        Assert.That(await ReadinessWithin(broker, TimeSpan.FromSeconds(15), HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task WrongPasswordInTheFile_BrokerStaysNotReady()
    {
        var file = Write("wrong-password", "nope");
        await using var broker = new ProductionBroker();

        await broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:PasswordFile={file}");

        Assert.That(await ReadinessWithin(broker, TimeSpan.FromSeconds(3), HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.ServiceUnavailable));
    }

    [Test]
    public async Task MissingPasswordFile_RefusesToStart_NamingTheSetting()
    {
        await using var broker = new ProductionBroker();

        var e = Assert.ThrowsAsync<StartupException>(() => broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:PasswordFile={Path.Combine(_dir, "absent")}"));

        Assert.That(e!.Message, Does.Contain("CredBroker:Redis:PasswordFile"));
    }

    [Test]
    public async Task CaFileWithoutTls_RefusesToStart()
    {
        using var certificates = Testing.Grpc.TestCertificates.Create();
        await using var broker = new ProductionBroker();

        var e = Assert.ThrowsAsync<StartupException>(() => broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:CaFile={certificates.CaFile}"));

        Assert.That(e!.Message, Does.Contain("ssl=true"));
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Polls /readyz until it answers <paramref name="hoped"/> or the time is up; returns the last status.</summary>
    private static async Task<HttpStatusCode> ReadinessWithin(ProductionBroker broker, TimeSpan limit, HttpStatusCode hoped)
    {
        using var http = new HttpClient { BaseAddress = broker.HttpAddress };
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            var status = (await http.GetAsync("/readyz")).StatusCode;
            if (status == hoped || DateTime.UtcNow > deadline)
            {
                return status;
            }

            await Task.Delay(50);
        }
    }
}
