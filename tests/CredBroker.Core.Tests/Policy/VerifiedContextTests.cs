using CredBroker.Core.Broker;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Policy;

/// <summary>Issue 15, item 14: <c>verified_context</c> in the policy file and how the granted context is resolved.</summary>
[TestFixture]
public sealed class VerifiedContextTests
{
    private const string Agents = """
        agents:
          - id: a1
            owner: o@example.com
            purpose: p
            audiences: [api]
            allowed_scopes: [x:read]
        """;

    private static PolicyDocument Parse(string head) => PolicyFile.Parse(head + "\n" + Agents, "policy.yaml");

    private static readonly PolicyDocument Policy = Parse("""
        context_labels:
          environment: [staging, prod]
          data_class: [public, pii]
        verified_context:
          environment: { claim: env }
        """);

    private static Dictionary<string, string> D(params (string K, string V)[] pairs) => pairs.ToDictionary(p => p.K, p => p.V, StringComparer.Ordinal);

    [Test]
    public void VerifiedContext_IsRead()
    {
        Assert.That(Policy.VerifiedContext, Is.EqualTo(new Dictionary<string, string> { ["environment"] = "env" }));
    }

    [TestCase("verified_context:\n  nope: { claim: env }", "verified_context.nope", "not a label declared in context_labels")]
    [TestCase("verified_context:\n  environment: { header: env }", "verified_context.environment.header", "unknown field")]
    [TestCase("verified_context:\n  environment: {}", "verified_context.environment.claim", "required")]
    [TestCase("verified_context:\n  environment: { claim: 'a b' }", "verified_context.environment.claim", "claim name")]
    public void BadVerifiedContext_IsAnError(string entry, string field, string message)
    {
        var error = Assert.Throws<PolicyFileException>(() => Parse("context_labels:\n  environment: [prod]\n" + entry))!;
        Assert.That(error.Errors.Select(e => e.Field), Does.Contain(field), error.Message);
        Assert.That(error.Message, Does.Contain(message));
    }

    [Test]
    public void TheVerifiedValue_FillsIn_AndAssertedLabelsKeepTheirSource()
    {
        var granted = GrantedContext.Resolve(Policy, D(("data_class", "pii")), D(("env", "prod"), ("sub", "x")));

        Assert.That(granted, Is.EqualTo(new[] { new ContextLabel("data_class", "pii", "asserted"), new ContextLabel("environment", "prod", "claim:env") }));
    }

    [Test]
    public void AnAgreeingAssertion_IsGranted_AsVerified()
    {
        var granted = GrantedContext.Resolve(Policy, D(("environment", "prod")), D(("env", "prod")));

        Assert.That(granted.Single(), Is.EqualTo(new ContextLabel("environment", "prod", "claim:env")));
        Assert.That(granted.Single().IsVerified);
    }

    [TestCase("staging", "prod", "contradicts the verified value 'prod'")]
    [TestCase("prod", null, "does not carry")]
    [TestCase("prod", "", "does not carry")]
    public void AContradictedOrUnbackedAssertion_IsDenied_WithTheRuleId(string asserted, string? claim, string message)
    {
        var claims = claim is null ? D() : D(("env", claim));

        var error = Assert.Throws<BrokerException>(() => GrantedContext.Resolve(Policy, D(("environment", asserted)), claims))!;

        Assert.That((error.Kind, error.RuleIds), Is.EqualTo((BrokerErrorKind.PermissionDenied, new[] { GrantedContext.RuleId })));
        Assert.That(error.Message, Does.Contain(message));
    }

    [Test]
    public void WithoutClaimOrAssertion_TheLabelIsAbsent()
    {
        Assert.That(GrantedContext.Resolve(Policy, D(), D()), Is.Empty);
    }
}
