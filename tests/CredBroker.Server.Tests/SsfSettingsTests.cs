using CredBroker.Server.Hosting;
using CredBroker.Testing;
using Microsoft.Extensions.Configuration;

namespace CredBroker.Server.Tests;

/// <summary>SSF settings that cannot work stop the start, naming the setting; secrets come from files of a minimum length.</summary>
[TestFixture]
public sealed class SsfSettingsTests
{
    private static BrokerOptions Bind(bool dev, params (string Key, string Value)[] settings) =>
        BrokerOptions.Bind(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build(), dev);

    [TestCase("CredBroker:Ssf:MaxEventsPerPoll", "0", "MaxEventsPerPoll")]
    [TestCase("CredBroker:Ssf:MaxLongPoll", "00:10:00", "MaxLongPoll")]
    [TestCase("CredBroker:Ssf:PushRetryMax", "00:00:00.001", "PushRetryMax")]
    [TestCase("CredBroker:Ssf:Receivers:0:Id", "only-an-id", "CredBroker:Ssf:Receivers:0 needs Id and SecretFile")]
    public void BadSettings_AreRefused_InDevModeToo(string key, string value, string expected)
    {
        var result = new BrokerOptionsValidator().Validate(null, Bind(dev: true, (key, value)));

        Assert.That(result.Failed, Is.True);
        Assert.That(result.Failures, Has.Some.Contains(expected));
    }

    [Test]
    public void DuplicateReceiverIds_AreRefused()
    {
        var result = new BrokerOptionsValidator().Validate(null, Bind(dev: true,
            ("CredBroker:Ssf:Receivers:0:Id", "a"), ("CredBroker:Ssf:Receivers:0:SecretFile", "/x"),
            ("CredBroker:Ssf:Receivers:1:Id", "a"), ("CredBroker:Ssf:Receivers:1:SecretFile", "/y")));

        Assert.That(result.Failures, Has.Some.Contains("receiver ids must be unique"));
    }

    [TestCase(null, "cannot be read")]
    [TestCase("too-short", "at least 32 characters")]
    public async Task AProductionBroker_WithAnUnreadableOrShortReceiverSecret_RefusesToStart(string? secret, string expected)
    {
        using var redis = RedisServer.Start();
        var dir = Directory.CreateTempSubdirectory("credbroker-ssf-settings-").FullName;
        var file = Path.Combine(dir, "receiver.secret");
        if (secret is not null)
        {
            await File.WriteAllTextAsync(file, secret);
        }

        await using var broker = new ProductionBroker();
        var e = Assert.ThrowsAsync<StartupException>(() => broker.StartAsync(redis.ConnectionString,
            "--CredBroker:Ssf:Receivers:0:Id=api", $"--CredBroker:Ssf:Receivers:0:SecretFile={file}"));
        Directory.Delete(dir, recursive: true);

        Assert.That(e!.Message, Does.Contain("CredBroker:Ssf:Receivers (api)").And.Contain(expected));
    }
}
