using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Policy;

/// <summary>The agent field <c>sender_constrained</c>: true (every token), or scope patterns (tokens carrying a match).</summary>
[TestFixture]
public sealed class SenderConstrainedPolicyTests
{
    private static string Agent(string senderConstrained) => $"""
        agents:
          - id: a1
            owner: o@example.com
            purpose: p
            audiences: [api]
            allowed_scopes: [x:read, x:write, y:*]
            sender_constrained: {senderConstrained}
        """;

    [Test]
    public void True_ConstrainsEveryToken()
    {
        var agent = PolicyFile.Parse(Agent("true"), "p.yaml").Agents.Find("a1")!;
        Assert.That(agent.SenderConstraintFor(["x:read"]), Is.EqualTo("*"));
    }

    [Test]
    public void ScopePatterns_ConstrainTokensCarryingAMatch()
    {
        var agent = PolicyFile.Parse(Agent("[x:write, 'y:*']"), "p.yaml").Agents.Find("a1")!;
        Assert.Multiple(() =>
        {
            Assert.That(agent.SenderConstraintFor(["x:read"]), Is.Null);
            Assert.That(agent.SenderConstraintFor(["x:read", "x:write"]), Is.EqualTo("x:write"));
            Assert.That(agent.SenderConstraintFor(["y:delete"]), Is.EqualTo("y:delete"));
        });
    }

    [Test]
    public void FalseOrAbsent_ConstrainsNothing()
    {
        Assert.That(PolicyFile.Parse(Agent("false"), "p.yaml").Agents.Find("a1")!.SenderConstraintFor(["x:write"]), Is.Null);
    }

    [TestCase("yes")]
    [TestCase("['not a pattern']")]
    public void OtherValues_AreErrorsAtTheField(string value)
    {
        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse(Agent(value), "p.yaml"))!;
        Assert.That(error.Errors.Select(e => e.Field), Has.Some.StartWith("agents[0].sender_constrained"), error.Message);
    }
}
