using System.Security.Cryptography;
using CredBroker.Core.Broker;
using CredBroker.Core.Tokens;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

/// <summary>The rotation timeline on a fake clock: publish before use, keep after retire, one winner across replicas.</summary>
[TestFixture]
public sealed class KeyRotationTests
{
    private static readonly TimeSpan Lead = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan TokenTtl = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
    private string _dir = null!;

    [SetUp]
    public void CreateKeyDirectory() => _dir = Directory.CreateTempSubdirectory("credbroker-keys-").FullName;

    [TearDown]
    public void DeleteKeyDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task FirstRefresh_BootstrapsTheScheduleWithTheFirstKey()
    {
        var first = AddKeyFile("a");
        AddKeyFile("b");
        var (keys, rotation) = Replica(new InMemoryKeyScheduleStore());

        await rotation.RefreshAsync(CancellationToken.None);

        Assert.That(keys.Current.Kid, Is.EqualTo(first));
        Assert.That(keys.Published.Select(k => k.Kid), Is.EqualTo(new[] { first }), "a spare key is not published before a rotation");
        Assert.That(keys.Problem, Is.Null);
    }

    [Test]
    public async Task Rotation_PublishesAtOnce_SignsAfterTheLead_RemovesTheOldKeyAfterTtlPlusSkew()
    {
        var old = AddKeyFile("a");
        var (keys, rotation) = Replica(new InMemoryKeyScheduleStore());
        await rotation.RefreshAsync(CancellationToken.None);
        var next = AddKeyFile("b");

        var schedule = await rotation.RotateAsync(null, CancellationToken.None);

        Assert.That(schedule.Keys[^1].Kid, Is.EqualTo(next));
        Assert.That(keys.Published.Select(k => k.Kid), Is.EqualTo(new[] { old, next }), "published before use");
        Assert.That(keys.JwksJson, Does.Contain(next));
        Assert.That(keys.Current.Kid, Is.EqualTo(old));

        _time.Advance(Lead - TimeSpan.FromMilliseconds(1));
        Assert.That(keys.Current.Kid, Is.EqualTo(old), "not one millisecond early");
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(keys.Current.Kid, Is.EqualTo(next));
        Assert.That(keys.Find(old), Is.Not.Null, "the retired key still verifies");

        _time.Advance(TokenTtl + Skew - TimeSpan.FromMilliseconds(1));
        Assert.That(keys.Published.Select(k => k.Kid), Is.EqualTo(new[] { old, next }));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(keys.Published.Select(k => k.Kid), Is.EqualTo(new[] { next }));
        Assert.That(keys.Find(old), Is.Null);
        Assert.That(keys.JwksJson, Does.Not.Contain(old));
    }

    [Test]
    public async Task Rotation_RefusesWhilePending_ReusedKeys_UnknownKids_AndMissingSpares()
    {
        var first = AddKeyFile("a");
        var (_, rotation) = Replica(new InMemoryKeyScheduleStore());
        await rotation.RefreshAsync(CancellationToken.None);

        Assert.That(Refusal(() => rotation.RotateAsync(null, CancellationToken.None)), Is.EqualTo(KeyRotationError.NoSpareKey));
        Assert.That(Refusal(() => rotation.RotateAsync("no-such-kid", CancellationToken.None)), Is.EqualTo(KeyRotationError.UnknownKey));
        Assert.That(Refusal(() => rotation.RotateAsync(first, CancellationToken.None)), Is.EqualTo(KeyRotationError.KeyUsed));

        AddKeyFile("b");
        AddKeyFile("c");
        await rotation.RotateAsync(null, CancellationToken.None);
        Assert.That(Refusal(() => rotation.RotateAsync(null, CancellationToken.None)), Is.EqualTo(KeyRotationError.InProgress));

        _time.Advance(Lead);
        Assert.DoesNotThrowAsync(() => rotation.RotateAsync(null, CancellationToken.None), "once the previous rotation is in force");
    }

    [Test]
    public async Task TwoReplicas_TheSecondRotationIsRefusedWhilePending_AndBothSwitchAtTheSameInstant()
    {
        AddKeyFile("a");
        var store = new InMemoryKeyScheduleStore();
        var (keysA, rotationA) = Replica(store);
        var (keysB, rotationB) = Replica(store);
        await rotationA.RefreshAsync(CancellationToken.None);
        await rotationB.RefreshAsync(CancellationToken.None);
        var next = AddKeyFile("b");

        await rotationA.RotateAsync(null, CancellationToken.None);
        Assert.That(Refusal(() => rotationB.RotateAsync(null, CancellationToken.None)), Is.EqualTo(KeyRotationError.InProgress));
        await rotationB.RefreshAsync(CancellationToken.None);

        _time.Advance(Lead);
        Assert.That((keysA.Current.Kid, keysB.Current.Kid), Is.EqualTo((next, next)));
        Assert.That(keysB.JwksJson, Is.EqualTo(keysA.JwksJson));
    }

    [Test]
    public async Task ReplicaWithoutTheScheduledKeyFile_NeitherPublishesNorTrustsIt_AndFailsClosedInsteadOfSigning()
    {
        AddKeyFile("a");
        var store = new InMemoryKeyScheduleStore();
        var (keysA, rotationA) = Replica(store);
        await rotationA.RefreshAsync(CancellationToken.None);
        var otherDir = Directory.CreateTempSubdirectory("credbroker-keys-").FullName;
        File.Copy(Path.Combine(_dir, "a.pem"), Path.Combine(otherDir, "a.pem"));
        var keysB = new RotatingSigningKeys(new KeyRing([], otherDir), _time);
        var rotationB = new KeyRotation(keysB, store, Options(), () => TokenTtl, _time);
        var next = AddKeyFile("b");

        await rotationA.RotateAsync(null, CancellationToken.None);
        var reported = await rotationB.RefreshAsync(CancellationToken.None);
        _time.Advance(Lead);

        // Key material comes only from key files (issue 15 item 1): the schedule's public half is never used.
        Assert.That(keysA.JwksJson, Does.Contain(next));
        Assert.That(keysB.JwksJson, Does.Not.Contain(next), "B holds no file for the key, so it does not publish it");
        Assert.That(keysB.Find(next), Is.Null, "nor trust it");
        Assert.That(reported, Has.Some.Contains("IGNORED key schedule entry '" + next + "'"));
        var error = Assert.Throws<BrokerException>(() => _ = keysB.Current);
        Assert.That(error!.Kind, Is.EqualTo(BrokerErrorKind.Unavailable));
        Assert.That(keysB.Problem, Does.Contain(next).And.Contain("mount"));
        Directory.Delete(otherDir, recursive: true);
    }

    [Test]
    public async Task AutomaticRotation_HappensWhenTheKeyHasSignedForRotateEvery()
    {
        AddKeyFile("a");
        var every = TimeSpan.FromDays(30);
        var keys = new RotatingSigningKeys(new KeyRing([], _dir), _time);
        var rotation = new KeyRotation(keys, new InMemoryKeyScheduleStore(), Options() with { RotateEvery = every }, () => TokenTtl, _time);
        await rotation.RefreshAsync(CancellationToken.None);
        var next = AddKeyFile("b");

        _time.Advance(every - TimeSpan.FromSeconds(1));
        Assert.That(await rotation.RotateIfDueAsync(CancellationToken.None), Is.Null);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That((await rotation.RotateIfDueAsync(CancellationToken.None))!.Keys[^1].Kid, Is.EqualTo(next));
        Assert.That(await rotation.RotateIfDueAsync(CancellationToken.None), Is.Null, "a pending rotation is not repeated");

        _time.Advance(Lead + every);
        Assert.That(Refusal(() => rotation.RotateIfDueAsync(CancellationToken.None)), Is.EqualTo(KeyRotationError.NoSpareKey), "due, but nothing to rotate to");
    }

    [Test]
    public async Task RemovedKeys_LeaveTheSchedule_SoItStaysBounded()
    {
        AddKeyFile("k0");
        var (_, rotation) = Replica(new InMemoryKeyScheduleStore());
        await rotation.RefreshAsync(CancellationToken.None);
        KeySchedule schedule = null!;
        for (var i = 1; i <= 5; i++)
        {
            AddKeyFile("k" + i);
            schedule = await rotation.RotateAsync(null, CancellationToken.None);
            _time.Advance(Lead + TokenTtl + Skew);
        }

        Assert.That(schedule.Keys, Has.Count.EqualTo(2), "the active key and the one it replaced");
    }

    [Test]
    public void DevKeyRing_GeneratesTheFirstKeyAndEachRotationsKey()
    {
        var keys = new RotatingSigningKeys(new KeyRing([], null, allowGenerate: true), _time);
        var rotation = new KeyRotation(keys, new InMemoryKeyScheduleStore(), Options(), () => TokenTtl, _time);

        Assert.DoesNotThrowAsync(() => rotation.RefreshAsync(CancellationToken.None));
        var first = keys.Current.Kid;
        Assert.DoesNotThrowAsync(() => rotation.RotateAsync(null, CancellationToken.None));
        _time.Advance(Lead);
        Assert.That(keys.Current.Kid, Is.Not.EqualTo(first));
    }

    [Test]
    public void Schedule_RoundTripsThroughJson()
    {
        using var key = SigningKey.Generate();
        using var next = SigningKey.Generate();
        var schedule = KeySchedule.Bootstrap(key, _time.GetUtcNow()).Rotate(next, _time.GetUtcNow(), Lead, TokenTtl);

        Assert.That(KeySchedule.FromJson(schedule.ToJson()), Is.EqualTo(schedule).Using<KeySchedule>((a, b) =>
            a.Version == b.Version && a.Keys.SequenceEqual(b.Keys)));
        Assert.That(schedule.ToJson(), Does.Not.Contain("BEGIN").And.Contain("activate_at"), "public coordinates and times only");
    }

    private (RotatingSigningKeys Keys, KeyRotation Rotation) Replica(IKeyScheduleStore store)
    {
        var keys = new RotatingSigningKeys(new KeyRing([], _dir), _time);
        return (keys, new KeyRotation(keys, store, Options(), () => TokenTtl, _time));
    }

    private static KeyRotationOptions Options() => new() { PublishLead = Lead, ClockSkew = Skew };

    private string AddKeyFile(string name)
    {
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var path = Path.Combine(_dir, name + ".pem");
        File.WriteAllText(path, ecdsa.ExportPkcs8PrivateKeyPem());
        using var key = SigningKey.FromPemFile(path);
        return key.Kid;
    }

    private static KeyRotationError? Refusal<T>(Func<Task<T>> rotate)
    {
        var error = Assert.ThrowsAsync<KeyRotationException>(async () => await rotate());
        return error?.Error;
    }
}
