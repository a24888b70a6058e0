using CredBroker.Core.Broker;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Security;

/// <summary>Issue 15, item 5: every identifier syntax matches the whole string; a final "\n" is never accepted.</summary>
[TestFixture]
public sealed class ExactSyntaxTests
{
    [Test]
    public void EverySyntax_RejectsATrailingNewline()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Syntax.AgentId().IsMatch("agent-1\n"), Is.False);
            Assert.That(Syntax.TaskId().IsMatch("task-1\n"), Is.False);
            Assert.That(Syntax.Scope().IsMatch("tickets:read\n"), Is.False);
            Assert.That(Syntax.Audience().IsMatch("tickets-api\n"), Is.False);
            Assert.That(Syntax.ContextKey().IsMatch("environment\n"), Is.False);
            Assert.That(ScopePattern.TryParse("tickets:*\n", out _), Is.False);
            Assert.That(ScopePattern.TryParse("tickets:read\n", out _), Is.False);

            Assert.That(Syntax.AgentId().IsMatch("agent-1"), Is.True);
            Assert.That(Syntax.TaskId().IsMatch("task-1"), Is.True);
            Assert.That(Syntax.Scope().IsMatch("tickets:read"), Is.True);
            Assert.That(ScopePattern.TryParse("tickets:*", out _), Is.True);
        });
    }

    [Test]
    public void PolicyFile_AgentIdWithTrailingNewline_IsAnError()
    {
        const string yaml = "agents:\n  - id: \"a1\\n\"\n    owner: o@example.com\n    purpose: p\n    audiences: [api]\n    allowed_scopes: [x:read]\n";

        Assert.Throws<PolicyFileException>(() => PolicyFile.Parse(yaml, "test.yaml"));
    }

    [Test]
    public void PolicyFile_ScopePatternWithTrailingNewline_IsAnError()
    {
        const string yaml = "agents:\n  - id: a1\n    owner: o@example.com\n    purpose: p\n    audiences: [api]\n    allowed_scopes: [\"x:read\\n\"]\n";

        Assert.Throws<PolicyFileException>(() => PolicyFile.Parse(yaml, "test.yaml"));
    }
}
