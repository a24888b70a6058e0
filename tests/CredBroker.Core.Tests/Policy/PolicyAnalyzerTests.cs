using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Policy;

[TestFixture]
public sealed class PolicyAnalyzerTests
{
    [Test]
    public void SamplePolicy_FindsWhoCanReachToxicCombinations_AndRulesNoAgentCanTrigger()
    {
        var findings = PolicyAnalyzer.Analyze(SamplePolicy.Load());

        var toxic = findings.Where(f => f.Kind == "toxic_reachable").Select(f => (f.AgentId, f.RuleId)).ToList();
        Assert.That(toxic, Is.EquivalentTo(new[]
        {
            ("research-agent", "toxic.secret-exfiltration"),
            ("data-agent", "toxic.customer-data-egress"),
            ("finance-agent", "toxic.pay-own-invoice"),
        }));
        var unreachable = findings.Where(f => f.Kind == "unreachable_scope").ToList();
        Assert.That(unreachable.Select(f => f.RuleId), Is.EquivalentTo(new[] { "toxic.unreviewed-deploy" }), "nobody can get deploy:prod");
        Assert.That(unreachable[0].Detail, Does.Contain("deploy:prod"));
    }

    [Test]
    public void CandidateWithoutOwnerOrPurpose_IsReportedByName()
    {
        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse("""
            agents:
              - id: a1
                audiences: [api]
                allowed_scopes: [x:read]
            """, "candidate"))!;

        var findings = PolicyAnalyzer.FromErrors(error.Errors);

        Assert.That(findings.Select(f => f.Kind), Is.EquivalentTo(new[] { "missing_owner", "missing_purpose" }));
    }

    [Test]
    public void ContextRuleNamingAnUndefinedAgent_IsReported()
    {
        var policy = PolicyFile.Parse("""
            context_labels: { environment: [prod] }
            agents:
              - { id: a1, owner: o, purpose: p, audiences: [api], allowed_scopes: [x:read] }
            context_rules:
              - { id: r1, when: { environment: [prod] }, agents: [a2], action: deny }
            """, "p.yaml");

        Assert.That(PolicyAnalyzer.Analyze(policy).Select(f => (f.Kind, f.AgentId)), Is.EqualTo(new[] { ("unknown_agent", "a2") }));
    }
}
