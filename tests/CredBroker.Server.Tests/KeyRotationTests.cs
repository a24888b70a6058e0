using System.Buffers.Text;
using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Signing-key rotation on a production-mode broker with Redis, seen by an offline validator:
/// the new key is published before it signs, a validator with a stale cache catches up with one
/// refresh, and the retired key leaves the JWKS only after its tokens have expired.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class KeyRotationTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    // Short timelines so the test runs in seconds: 4 s tokens, 2 s publish lead, no extra skew.
    private static readonly string ShortTokens = ProductionBroker.AgentsYaml
        .Replace("max_token_ttl: 5m", "max_token_ttl: 4s", StringComparison.Ordinal)
        .Replace("max_concurrent_leases: 2", "max_concurrent_leases: 2\n    max_token_ttl: 4s", StringComparison.Ordinal);

    private static readonly string[] FastRotation =
    [
        "--CredBroker:Signing:PublishLead=00:00:02",
        "--CredBroker:Signing:ClockSkew=00:00:00",
        "--CredBroker:Signing:ScheduleRefreshInterval=00:00:00.200",
    ];

    [Test]
    public async Task Rotation_PublishesBeforeUse_StaleValidatorCatchesUp_RetiredKeyLeavesAfterItsTokensExpire()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker(ShortTokens);
        await broker.StartAsync(redis.ConnectionString, FastRotation);
        using var agent = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        using var http = new HttpClient { BaseAddress = broker.HttpAddress };
        var cache = new JwksCache(ct => http.GetStringAsync("/.well-known/jwks.json", ct)) { MinRefreshInterval = TimeSpan.Zero };
        await cache.RefreshAsync();
        var validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = broker.HttpAddress.ToString().TrimEnd('/'), Audience = "tickets-api" }, cache);

        var before = await BeginAsync(agent, "before");
        var oldKid = Kid(before.AccessToken);
        Assert.That(validator.Validate(before.AccessToken, DateTimeOffset.UtcNow).IsValid, Is.True);

        var newKid = await broker.AddSigningKeyAsync();
        var rotated = await operators.RotateSigningKeyAsync(string.Empty, "scheduled rotation test");
        Assert.That(rotated.Kid, Is.EqualTo(newKid), "the unused mounted key is picked");
        Assert.That(rotated.Keys.Select(k => (k.Kid, k.Phase)), Is.EqualTo(new[] { (oldKid, "active"), (newKid, "published") }));
        Assert.That(rotated.Keys[0].RetireAt, Is.EqualTo(rotated.ActivateAt), "the old key retires when the new one starts signing");

        // Published before use: the JWKS has the new key while tokens are still signed with the old one.
        Assert.That(await JwksKidsAsync(http), Is.EquivalentTo(new[] { oldKid, newKid }));
        Assert.That(Kid((await BeginAsync(agent, "during-lead")).AccessToken), Is.EqualTo(oldKid));

        var after = await WaitForAsync(() => BeginAsync(agent, "after-" + Guid.NewGuid().ToString("N")), t => Kid(t.AccessToken) == newKid, TimeSpan.FromSeconds(10));
        Assert.That(DateTimeOffset.UtcNow, Is.GreaterThanOrEqualTo(rotated.ActivateAt.ToDateTimeOffset()));
        Assert.That(cache.Current!.Find(newKid), Is.Null, "the validator's cache is stale: it never saw the new key");
        Assert.That((await validator.ValidateAsync(after.AccessToken, DateTimeOffset.UtcNow)).IsValid, Is.True, "one refresh on the unknown kid catches up");
        Assert.That(validator.Validate(before.AccessToken, DateTimeOffset.UtcNow).IsValid, Is.True, "the retired key still verifies its unexpired tokens");

        // Removed after retire + max token TTL (4 s) + skew (0): by then every old-key token has expired.
        var removeAt = rotated.Keys[0].RemoveAt.ToDateTimeOffset();
        Assert.That(removeAt - rotated.ActivateAt.ToDateTimeOffset(), Is.EqualTo(TimeSpan.FromSeconds(4)));
        await WaitForAsync(() => JwksKidsAsync(http), kids => !kids.Contains(oldKid), TimeSpan.FromSeconds(15));
        Assert.That(DateTimeOffset.UtcNow, Is.GreaterThanOrEqualTo(removeAt));
        await cache.RefreshAsync();
        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(Claim(before.AccessToken, "iat"));
        Assert.That(validator.Validate(before.AccessToken, issuedAt).Error, Is.EqualTo(TokenErrors.UnknownKey),
            "even at a time when it had not expired, an old-key token no longer verifies");
        Assert.That((await validator.ValidateAsync(after.AccessToken, DateTimeOffset.UtcNow)).IsValid, Is.True);
    }

    [Test]
    public async Task Rotation_Refusals_SayWhatToDo()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString, FastRotation);
        using var operators = broker.OperatorClient();

        var noSpare = await Refused.CallAsync(() => operators.RotateSigningKeyAsync(string.Empty, "no spare"));
        Assert.That(noSpare.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Assert.That(noSpare.Detail, Does.Contain("Signing:KeyDirectory"));

        var unknown = await Refused.CallAsync(() => operators.RotateSigningKeyAsync("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "unknown"));
        Assert.That(unknown.StatusCode, Is.EqualTo(StatusCode.NotFound));

        var malformed = await Refused.CallAsync(() => operators.RotateSigningKeyAsync("../etc/passwd", "bad"));
        Assert.That(malformed.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));

        var kid = await broker.AddSigningKeyAsync();
        Assert.That((await operators.RotateSigningKeyAsync(kid, "first")).Kid, Is.EqualTo(kid));
        await broker.AddSigningKeyAsync();
        var pending = await Refused.CallAsync(() => operators.RotateSigningKeyAsync(string.Empty, "second while pending"));
        Assert.That(pending.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Assert.That(pending.Detail, Does.Contain("already scheduled").And.Contain(kid));

        using var agentCredentialOnOperatorListener = broker.OperatorClient(Triage, ProductionBroker.BrokerAudience);
        var agentTries = await Refused.CallAsync(() => agentCredentialOnOperatorListener.RotateSigningKeyAsync(string.Empty, "agent"));
        Assert.That(agentTries.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
    }

    [Test]
    public async Task Replicas_ShareTheSchedule_AndSwitchKeysTogether()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker(ShortTokens);
        await broker.StartAsync(redis.ConnectionString, FastRotation);
        using var replica = await broker.StartReplicaProcessAsync(redis.ConnectionString, FastRotation);
        using var replicaHttp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{replica.HttpPort}") };
        using var replicaAgent = new CredBrokerClient(replica.AgentAddress, () => broker.WorkloadToken(Triage));
        using var operators = broker.OperatorClient();
        var oldKid = Kid((await BeginAsync(replicaAgent, "replica-before")).AccessToken);

        var newKid = await broker.AddSigningKeyAsync();
        await operators.RotateSigningKeyAsync(newKid, "replicas");

        await WaitForAsync(() => JwksKidsAsync(replicaHttp), kids => kids.Contains(newKid), TimeSpan.FromSeconds(2));
        var fromReplica = await WaitForAsync(() => BeginAsync(replicaAgent, "replica-" + Guid.NewGuid().ToString("N")), t => Kid(t.AccessToken) == newKid, TimeSpan.FromSeconds(10));
        Assert.That(Kid(fromReplica.AccessToken), Is.Not.EqualTo(oldKid), "the other replica signs with the new key from its own mounted file");
    }


    private static Task<BeginTaskResponse> BeginAsync(CredBrokerClient agent, string task) =>
        agent.BeginTaskAsync(new BeginTaskRequest { TaskId = task, Scopes = { "tickets:read" } });

    private static async Task<string[]> JwksKidsAsync(HttpClient http)
    {
        using var jwks = JsonDocument.Parse(await http.GetStringAsync("/.well-known/jwks.json"));
        return jwks.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToArray();
    }

    private static async Task<T> WaitForAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the condition did not hold in time");
            await Task.Delay(50);
        }
    }

    private static string Kid(string jwt) => Part(jwt, 0).GetProperty("kid").GetString()!;

    private static long Claim(string jwt, string name) => Part(jwt, 1).GetProperty(name).GetInt64();

    private static JsonElement Part(string jwt, int index) =>
        JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[index])).RootElement.Clone();
}
