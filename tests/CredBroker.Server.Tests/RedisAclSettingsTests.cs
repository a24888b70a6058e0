using System.Net;
using CredBroker.Contracts.V1;
using CredBroker.Server.Hosting;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// CredBroker:Redis:User with PasswordFile through the real composition root, against a redis-server
/// whose default user is off; and the Redis timeout/WAIT settings that cannot work refuse the start.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisAclSettingsTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string User = "credbroker";
    private RedisServer _redis = null!;
    private string _dir = null!;
    private string _passwordFile = null!;

    [OneTimeSetUp]
    public void StartRedisWithAnAclUser()
    {
        const string password = "acl,p@ss=word";
        _redis = RedisServer.Start(appendOnly: false, RedisServer.FreePort(),
            $"--user default off --user {User} on \">{password}\" ~cb:* resetchannels &__Booksleeve_MasterChanged -@all +@read +@write +@scripting +@stream +@connection +@transaction -@dangerous +info +time");
        _dir = Directory.CreateTempSubdirectory("credbroker-redis-acl-").FullName;
        _passwordFile = Path.Combine(_dir, "password");
        File.WriteAllText(_passwordFile, password + "\n");
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _redis.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public async Task AclUserAndPasswordFile_BrokerIsReadyAndMints()
    {
        await using var broker = new ProductionBroker();
        await broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:User={User}", $"--CredBroker:Redis:PasswordFile={_passwordFile}");
        using var client = broker.ClientFor(Triage);

        var begun = await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "acl-user", Scopes = { "tickets:read" } }));

        Assert.That(begun.AccessToken, Is.Not.Empty);
        Assert.That(await ReadinessWithin(broker, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task PasswordFileWithoutTheUser_IsTheDisabledDefaultUser_BrokerStaysNotReady()
    {
        await using var broker = new ProductionBroker();
        await broker.StartAsync(_redis.ConnectionString, $"--CredBroker:Redis:PasswordFile={_passwordFile}");

        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = TimeSpan.FromSeconds(20) };
        Assert.That((await http.GetAsync("/readyz")).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
    }

    [TestCase("--CredBroker:Redis:Timeout=00:00:00.010", "CredBroker:Redis:Timeout")]
    [TestCase("--CredBroker:Redis:WaitReplicas=-1", "CredBroker:Redis:WaitReplicas")]
    [TestCase("--CredBroker:Redis:WaitReplicas=1 --CredBroker:Redis:WaitTimeout=00:00:05", "CredBroker:Redis:WaitTimeout")]
    public async Task RedisSettingsThatCannotWork_RefuseTheStart_NamingTheKey(string arguments, string key)
    {
        await using var broker = new ProductionBroker();

        var e = Assert.ThrowsAsync<StartupException>(() => broker.StartAsync(_redis.ConnectionString, arguments.Split(' ')));

        Assert.That(e!.Message, Does.Contain(key));
    }

    private static async Task<HttpStatusCode> ReadinessWithin(ProductionBroker broker, HttpStatusCode hoped)
    {
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = TimeSpan.FromSeconds(20) };
        return await Readyz.WithinAsync(http, hoped);
    }
}
