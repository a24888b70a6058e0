using System.Text;
using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Core.Tokens;
using CredBroker.Testing;
using StackExchange.Redis;
using SigningKey = CredBroker.Core.Tokens.SigningKey;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 1: key material comes only from mounted key files. Someone who can write to Redis
/// adds their own public keys to the signing-key schedule (one published, one "active"); a replica
/// ignores both and says so loudly in its log, its JWKS does not publish them, a token signed with
/// the foreign key and carrying a real lease's claims introspects inactive, and the replica keeps
/// signing with its own key.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecuritySigningKeyScheduleTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string ScheduleKey = "cb:signing:schedule";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(40);

    private static string B64(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    /// <summary>The real token's claims, signed with <paramref name="key"/> under its kid.</summary>
    private static string Forge(string realToken, SigningKey key)
    {
        var header = B64(Encoding.UTF8.GetBytes($"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{key.Kid}\"}}"));
        var input = header + "." + realToken.Split('.')[1];
        return input + "." + B64(key.Sign(Encoding.ASCII.GetBytes(input)));
    }

    [Test]
    public async Task ForeignKeysWrittenToTheSchedule_AreIgnoredAndLogged_NeverPublishedTrustedOrUsed()
    {
        using var replica = await Broker.StartReplicaProcessAsync(RedisUnderTest.ConnectionString);
        using var agent = new CredBrokerClient(replica.AgentAddress, () => Broker.WorkloadToken(Triage));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{replica.HttpPort}") };
        var real = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "keys-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
        var realKid = JsonDocument.Parse(Convert.FromBase64String(PadBase64(real.AccessToken.Split('.')[0]))).RootElement.GetProperty("kid").GetString();
        using var published = SigningKey.Generate();
        using var active = SigningKey.Generate();

        // The attacker's write: the schedule as stored, plus two foreign public keys, with a higher version.
        using (var redis = await ConnectionMultiplexer.ConnectAsync(RedisUnderTest.ConnectionString))
        {
            var db = redis.GetDatabase();
            var schedule = KeySchedule.FromJson((string)(await db.ExecuteAsync("HGET", ScheduleKey, "json"))!);
            var now = DateTimeOffset.UtcNow;
            var forged = schedule with
            {
                Version = schedule.Version + 1,
                Keys =
                [
                    .. schedule.Keys,
                    new ScheduledKey(published.Kid, published.X, published.Y, now.AddMinutes(-1), now.AddHours(1), null, null),
                    new ScheduledKey(active.Kid, active.X, active.Y, now.AddMinutes(-1), now.AddSeconds(-30), null, null),
                ],
            };
            await db.ExecuteAsync("HSET", ScheduleKey, "version", forged.Version, "json", forged.ToJson());
        }

        var deadline = DateTime.UtcNow + Patience;
        while (!(replica.Output.Contains(published.Kid, StringComparison.Ordinal) && replica.Output.Contains(active.Kid, StringComparison.Ordinal)))
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the replica read the schedule and logged the ignored entries: " + replica.Output);
            await Task.Delay(100);
        }

        Assert.That(replica.Output, Does.Contain("IGNORED key schedule entry"));
        var jwks = await http.GetStringAsync("/.well-known/jwks.json");
        Assert.That(jwks, Does.Not.Contain(published.Kid).And.Not.Contain(active.Kid), "foreign keys are never published");
        Assert.That(jwks, Does.Contain(realKid));
        Assert.That((await agent.IntrospectAsync(Forge(real.AccessToken, published))).Active, Is.False, "a token signed with a foreign key is not trusted");
        Assert.That((await agent.IntrospectAsync(Forge(real.AccessToken, active))).Active, Is.False);
        Assert.That((await agent.IntrospectAsync(real.AccessToken)).Active, Is.True);
        var next = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "keys-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });
        var nextKid = JsonDocument.Parse(Convert.FromBase64String(PadBase64(next.AccessToken.Split('.')[0]))).RootElement.GetProperty("kid").GetString();
        Assert.That(nextKid, Is.EqualTo(realKid), "the replica keeps signing with its own key, not the foreign 'active' one");
    }

    private static string PadBase64(string base64Url)
    {
        var s = base64Url.Replace('-', '+').Replace('_', '/');
        return s + new string('=', (4 - s.Length % 4) % 4);
    }
}
