using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Policy;

/// <summary>Validation of the policy file: every error names file, line and field; a file with any error is rejected whole.</summary>
[TestFixture]
public sealed class PolicyFileTests
{
    private const string Agent = """
        agents:
          - id: a1
            owner: o@example.com
            purpose: p
            audiences: [api]
            allowed_scopes: [x:read]
        """;

    private static PolicyError Single(string yaml)
    {
        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse(yaml, "policy.yaml"))!;
        Assert.That(error.Errors, Has.Count.EqualTo(1), error.Message);
        return error.Errors[0];
    }

    [Test]
    public void TheSamplePolicy_IsValid()
    {
        var policy = SamplePolicy.Load();

        Assert.That(policy.Agents.All.Select(a => a.Id), Is.EquivalentTo(new[] { "triage-agent", "code-agent", "research-agent", "finance-agent", "data-agent", "ops-agent" }));
        Assert.That(policy.Agents.Find("triage-agent")!.Identities, Does.Contain("spiffe://example.com/ns/support/sa/triage"));
        Assert.That(policy.ToxicCombinations.Select(t => t.RuleId), Does.Contain("toxic.secret-exfiltration"));
        Assert.That(policy.Settings.DenialBurst, Is.EqualTo(new DenialBurstSettings(5, TimeSpan.FromMinutes(1), DenialBurstAction.Quarantine)));
        Assert.That(policy.Version, Has.Length.EqualTo(12));
    }

    [Test]
    public void MissingOwner_IsReportedAtTheAgentsLine()
    {
        var error = Single("""
            agents:
              - id: a1
                purpose: p
                audiences: [api]
                allowed_scopes: [x:read]
            """);

        Assert.That((error.Line, error.Field), Is.EqualTo((2, "agents[0].owner")));
        Assert.That(error.ToString(), Does.StartWith("policy.yaml:2:").And.Contain("named owner"));
    }

    [Test]
    public void MissingPurpose_IsAnError() =>
        Assert.That(Single(Agent.Replace("    purpose: p\n", string.Empty)).Field, Is.EqualTo("agents[0].purpose"));

    [Test]
    public void BadScopePattern_NamesTheLineOfTheEntry()
    {
        var error = Single(Agent.Replace("allowed_scopes: [x:read]", "allowed_scopes:\n      - x:read\n      - x:re*d"));

        Assert.That((error.Line, error.Field), Is.EqualTo((8, "agents[0].allowed_scopes")));
        Assert.That(error.Message, Does.Contain("'x:re*d'"));
    }

    [Test]
    public void UnknownField_IsAnError_SoTyposCannotLoosenPolicy()
    {
        var error = Single(Agent + "\n    disalowed_scopes: [x:write]");

        Assert.That((error.Line, error.Field), Is.EqualTo((7, "agents[0].disalowed_scopes")));
        Assert.That(error.Message, Does.Contain("unknown field"));
    }

    [Test]
    public void YamlSyntaxError_NamesLineAndColumn()
    {
        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse("agents:\n  - id: [unclosed\n", "p.yaml"))!;

        Assert.That(error.Errors[0].Source, Is.EqualTo("p.yaml"));
        Assert.That(error.Errors[0].Line, Is.GreaterThanOrEqualTo(2));
        Assert.That(error.Errors[0].Field, Is.EqualTo("yaml"));
    }

    [Test]
    public void EveryErrorIsReported_NotOnlyTheFirst()
    {
        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse("""
            agents:
              - id: Bad_Id
                owner: o
                purpose: p
                audiences: [api]
                allowed_scopes: [x:read]
                max_token_ttl: forever
            toxic_combinations:
              - id: lonely
                scopes: [x:read]
            """, "p.yaml"))!;

        Assert.That(error.Errors.Select(e => e.Field), Is.SupersetOf(new[] { "agents[0].id", "agents[0].max_token_ttl", "toxic_combinations[0].scopes" }));
        Assert.That(error.Errors.Select(e => e.Line), Is.SupersetOf(new[] { 2, 7, 10 }));
    }

    [Test]
    public void AllowedScopeCoveredByDisallowed_IsAnError() =>
        Assert.That(Single(Agent.Replace("allowed_scopes: [x:read]", "allowed_scopes: [x:read]\n    disallowed_scopes: [\"x:*\"]")).Message,
            Does.Contain("disallowed always wins"));

    [Test]
    public void ContextRuleOnAnUndeclaredLabel_IsAnError()
    {
        var error = Single(Agent + "\ncontext_rules:\n  - id: r\n    when: { region: [mars] }\n    action: deny");

        Assert.That(error.Field, Is.EqualTo("context_rules[0].when.region"));
        Assert.That(error.Line, Is.EqualTo(9));
    }

    [Test]
    public void OneIdentityForTwoAgents_IsAnError()
    {
        var yaml = Agent.Replace("    purpose: p", "    purpose: p\n    identities: [spiffe://x/a]") + "\n" + """
              - id: a2
                owner: o
                purpose: p
                identities: [spiffe://x/a]
                audiences: [api]
                allowed_scopes: [x:read]
            """;

        Assert.That(Single(yaml).Message, Does.Contain("already maps to agent 'a1'"));
    }

    [Test]
    public void ApprovalTimeoutMustBeShorterThanTheLeaseLifetime() =>
        Assert.That(Single("settings: { approval_timeout: 2h }\n" + Agent + "\n    approval_scopes: [x:admin]").Field, Is.EqualTo("settings.approval_timeout"));

    [TestCase("tickets:read", "tickets:read", true)]
    [TestCase("tickets:*", "tickets:read", true)]
    [TestCase("tickets:*", "tickets:read:all", false)]
    [TestCase("github.repo:write:org/*", "github.repo:write:org/web", true)]
    [TestCase("github.repo:write:org/*", "github.repo:write:org/web/wiki", false)]
    [TestCase("github.repo:write:org/*", "github.repo:write:org:web", false)]
    [TestCase("github.repo:write:org/*", "github.repo:write:org/", false)]
    [TestCase("*:read", "kb:read", true)]
    [TestCase("*:read", "read", false)]
    public void ScopePattern_MatchesOneSegmentPerStar(string pattern, string scope, bool matches) =>
        Assert.That(ScopePattern.Parse(pattern).Matches(scope), Is.EqualTo(matches));

    [TestCase("a:*")]
    [TestCase("a:b*")]
    [TestCase("a::b")]
    [TestCase("")]
    [TestCase("a b")]
    public void ScopePattern_Syntax(string text) =>
        Assert.That(ScopePattern.TryParse(text, out _), Is.EqualTo(text == "a:*"));
}
