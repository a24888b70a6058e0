using CredBroker.Core.Agents;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Testing;

namespace CredBroker.Core.Tests.Policy;

/// <summary>Reloads swap the policy atomically; an invalid file keeps the last good one and says why.</summary>
[TestFixture]
public sealed class PolicyHolderTests
{
    private string _file = null!;

    [SetUp]
    public void CreateFile() => _file = Path.Combine(Directory.CreateTempSubdirectory("policy-").FullName, "policy.yaml");

    [TearDown]
    public void DeleteFile() => Directory.Delete(Path.GetDirectoryName(_file)!, recursive: true);

    private static string Policy(string scopes) => $$"""
        agents:
          - id: a1
            owner: o@example.com
            purpose: p
            audiences: [api]
            allowed_scopes: [{{scopes}}]
        """;

    private static TaskRequest Request(string scope) => new("a1", "t", "", [scope], "", null, new Dictionary<string, string>());

    [Test]
    public void ValidChange_TakesEffectOnReload()
    {
        File.WriteAllText(_file, Policy("x:read"));
        var holder = PolicyHolder.FromFile(_file, TimeProvider.System);
        Assert.That(holder.Decide(holder.Find("a1")!, Request("x:write")).Outcome, Is.EqualTo(DecisionOutcome.Deny));

        File.WriteAllText(_file, Policy("x:read, x:write"));
        var result = holder.Reload();

        Assert.That(result.Applied, Is.True);
        Assert.That(holder.Decide(holder.Find("a1")!, Request("x:write")).Outcome, Is.EqualTo(DecisionOutcome.Allow));
        Assert.That(holder.LastError, Is.Null);
    }

    [Test]
    public void InvalidChange_KeepsTheLastGoodPolicy_AndReportsFileAndLine()
    {
        File.WriteAllText(_file, Policy("x:read"));
        var time = new ManualTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var holder = PolicyHolder.FromFile(_file, time);
        var version = holder.Current.Version;

        File.WriteAllText(_file, Policy("x:read").Replace("    owner: o@example.com\n", string.Empty) + "\n    max_token_ttl: 3 days");
        time.Advance(TimeSpan.FromMinutes(1));
        var result = holder.Reload();

        Assert.That(result.Applied, Is.False);
        Assert.That(result.Errors.Select(e => $"{e.Source}:{e.Line}:{e.Field}"), Is.EquivalentTo(new[] { $"{_file}:2:agents[0].owner", $"{_file}:6:agents[0].max_token_ttl" }));
        Assert.That(holder.Current.Version, Is.EqualTo(version), "the old policy stays in force");
        Assert.That(holder.Decide(holder.Find("a1")!, Request("x:read")).Outcome, Is.EqualTo(DecisionOutcome.Allow));
        Assert.That(holder.LastError, Is.EqualTo(result));
    }

    [Test]
    public void DeletedFile_KeepsTheLastGoodPolicy()
    {
        File.WriteAllText(_file, Policy("x:read"));
        var holder = PolicyHolder.FromFile(_file, TimeProvider.System);
        File.Delete(_file);

        var result = holder.Reload();

        Assert.That(result.Applied, Is.False);
        Assert.That(result.Errors[0].Message, Does.Contain("not found"));
        Assert.That(holder.Find("a1"), Is.Not.Null);
    }

    [Test]
    public void AnInvalidFileAtStart_Throws_SoTheBrokerDoesNotStartWithoutPolicy()
    {
        File.WriteAllText(_file, "agents: []");

        Assert.Throws<PolicyFileException>(() => PolicyHolder.FromFile(_file, TimeProvider.System));
    }

    [Test]
    public void DenialBurst_TripsOncePerWindowAtTheThreshold()
    {
        var time = new ManualTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var detector = new DenialBurstDetector(time);
        var settings = new DenialBurstSettings(3, TimeSpan.FromMinutes(1), DenialBurstAction.Alert);
        var denied = new Decision(DecisionOutcome.Deny, [], "", TimeSpan.Zero, ["agent.disallowed_scope"], "no");

        var first = Enumerable.Range(0, 5).Select(_ => detector.Record("a1", denied, settings)).ToList();
        time.Advance(TimeSpan.FromMinutes(2));
        var afterWindow = Enumerable.Range(0, 2).Select(_ => detector.Record("a1", denied, settings)).ToList();
        var otherAgent = detector.Record("a2", denied, settings);

        Assert.That(first.Select(b => b is not null), Is.EqualTo(new[] { false, false, true, false, false }));
        Assert.That(first[2]!.RuleIds, Is.EqualTo(new[] { "agent.disallowed_scope" }));
        Assert.That(afterWindow, Is.All.Null, "old denials left the window");
        Assert.That(otherAgent, Is.Null);
        Assert.That(detector.Record("a1", denied, null), Is.Null, "off when not configured");
    }
}
