using CredBroker.Server.Auth;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>The remembered-credential cache never answers for a credential past the moment full validation would refuse it.</summary>
[TestFixture]
public sealed class VerifiedCredentialCacheTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly VerifiedCredential Agent = new("https://workloads.test", "system:serviceaccount:support:triage", [], []);

    [Test]
    public void RememberedCredential_HitsUntilJustBeforeItsExpiry_ThenMisses()
    {
        var time = new ManualTimeProvider(Start);
        var cache = new VerifiedCredentialCache(time, capacity: 10);
        cache.Add("credential-a", Agent, Start.AddMinutes(5));

        time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.That(cache.TryGet("credential-a", out var caller), Is.True);
        Assert.That(caller, Is.SameAs(Agent));

        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(cache.TryGet("credential-a", out _), Is.False);
        Assert.That(cache.Count, Is.Zero, "an expired entry is dropped when it is met");
    }

    [Test]
    public void OnlyTheExactCredentialHits()
    {
        var cache = new VerifiedCredentialCache(new ManualTimeProvider(Start), capacity: 10);
        cache.Add("header.payload.signature", Agent, Start.AddMinutes(5));

        Assert.That(cache.TryGet("header.payload.signaturE", out _), Is.False);
        Assert.That(cache.TryGet("header.payload.signature ", out _), Is.False);
        Assert.That(cache.TryGet("HEADER.payload.signature", out _), Is.False);
    }

    [Test]
    public void AlreadyExpiredCredential_IsNotRemembered()
    {
        var cache = new VerifiedCredentialCache(new ManualTimeProvider(Start), capacity: 10);
        cache.Add("credential-a", Agent, Start);

        Assert.That(cache.TryGet("credential-a", out _), Is.False);
        Assert.That(cache.Count, Is.Zero);
    }

    [Test]
    public void ZeroCapacity_RemembersNothing()
    {
        var cache = new VerifiedCredentialCache(new ManualTimeProvider(Start), capacity: 0);
        cache.Add("credential-a", Agent, Start.AddMinutes(5));

        Assert.That(cache.TryGet("credential-a", out _), Is.False);
    }

    [Test]
    public void FullCache_NeverGrowsPastCapacity_AndMakesRoomOnlyByDroppingExpiredEntries()
    {
        var time = new ManualTimeProvider(Start);
        var cache = new VerifiedCredentialCache(time, capacity: 3);
        cache.Add("short-1", Agent, Start.AddSeconds(10));
        cache.Add("short-2", Agent, Start.AddSeconds(10));
        cache.Add("long", Agent, Start.AddMinutes(10));

        cache.Add("new-while-full", Agent, Start.AddMinutes(10));
        Assert.That(cache.Count, Is.EqualTo(3));
        Assert.That(cache.TryGet("new-while-full", out _), Is.False, "a full cache of live entries remembers nothing new");

        time.Advance(TimeSpan.FromSeconds(11));
        cache.Add("after-expiry", Agent, Start.AddMinutes(10));
        Assert.That(cache.TryGet("after-expiry", out _), Is.True);
        Assert.That(cache.TryGet("long", out _), Is.True, "live entries are kept");
        Assert.That(cache.Count, Is.EqualTo(2));
    }
}
