using System.Security.Cryptography;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Two production replicas (one in process, one its own process) behind one external name (<c>CredBroker:Dpop:AgentUris</c>) sharing one
/// Redis: a proof accepted by one replica is a replay at the other (the jti store is Redis, SET NX
/// PX), and a proof naming a replica's own address is refused once the external name is configured.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityDpopReplicaTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string External = "https://broker.example";

    private RedisServer _redis = null!;
    private ProductionBroker _a = null!;
    private BrokerProcess _b = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _a = new ProductionBroker();
        await _a.StartAsync(_redis.ConnectionString, $"--CredBroker:Dpop:AgentUris:0={External}");
        // A second replica as its own process: same key files, agents and workload issuer, same Redis.
        _b = await _a.StartReplicaProcessAsync(_redis.ConnectionString, $"--CredBroker:Dpop:AgentUris:0={External}/");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _b.Dispose();
        await _a.DisposeAsync();
        _redis.Dispose();
    }

    private static BeginTaskRequest Begin() => new() { TaskId = "task-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } };

    private static Metadata Dpop(string proof) => new() { { "dpop", proof } };

    [Test]
    public async Task ProofAcceptedByOneReplica_IsAReplayAtTheOther()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var atA = _a.ClientFor(Triage);
        using var atB = new CredBrokerClient(_b.AgentAddress, () => _a.WorkloadToken(Triage));
        var proof = DpopProofs.Make(key, External + "/credbroker.v1.AgentBroker/BeginTask");

        await atA.Broker.BeginTaskAsync(Begin(), Dpop(proof), DateTime.UtcNow.AddSeconds(30));
        var replay = await Refused.CallAsync(() => atB.Broker.BeginTaskAsync(Begin(), Dpop(proof), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        var fresh = await atB.Broker.BeginTaskAsync(Begin(), Dpop(DpopProofs.Make(key, External + "/credbroker.v1.AgentBroker/BeginTask")), DateTime.UtcNow.AddSeconds(30));

        Assert.That((replay.StatusCode, replay.ErrorInfo?.Reason), Is.EqualTo((StatusCode.Unauthenticated, "DPOP_REPLAY")), replay.Message);
        Assert.That(fresh.AccessToken, Is.Not.Empty, "a new proof by the same key is accepted by the other replica");
    }

    [Test]
    public async Task ConfiguredExternalUri_IsTheOnlyAcceptedHtu_AndTheClientUsesItViaDpopUri()
    {
        using var key = DpopKey.Generate();
        using var direct = new CredBrokerClient(_a.AgentAddress, () => _a.WorkloadToken(Triage)) { DpopKey = key };
        using var viaName = new CredBrokerClient(_a.AgentAddress, () => _a.WorkloadToken(Triage)) { DpopKey = key, DpopUri = new Uri(External) };

        var refused = await Refused.CallAsync(() => direct.BeginTaskAsync(Begin()));
        var begun = await viaName.BeginTaskAsync(Begin());

        Assert.That(refused.ErrorInfo?.Reason, Is.EqualTo("DPOP_HTU"), refused.Message);
        Assert.That(refused.Status.Detail, Does.Contain("https://broker.example/credbroker.v1.AgentBroker/BeginTask"));
        Assert.That(begun.AccessToken, Is.Not.Empty);
    }

    [Test]
    public async Task RedisReplayStore_KeepsEachProofForABoundedTime()
    {
        using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
        var store = new Redis.RedisDpopReplayStore(redis);
        var key = DpopProofValidator.ReplayKeyOf("jkt", Guid.NewGuid().ToString("N"));

        Assert.That(await store.TryRecordAsync(key, TimeSpan.FromHours(5), default), Is.True);
        Assert.That(await store.TryRecordAsync(key, TimeSpan.FromSeconds(5), default), Is.False);
        var ttl = await redis.GetDatabase().KeyTimeToLiveAsync("cb:dpop:" + key);
        Assert.That(ttl, Is.Not.Null.And.LessThanOrEqualTo(Redis.RedisDpopReplayStore.MaxTtl), "a TTL is always set, capped");
    }
}
