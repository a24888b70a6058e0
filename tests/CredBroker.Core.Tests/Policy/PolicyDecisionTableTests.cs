using CredBroker.Core.Policy;

namespace CredBroker.Core.Tests.Policy;

/// <summary>
/// Requests decided against samples/policy/policy.yaml: each case asserts the outcome, the rule ids
/// that fired (in pipeline order) and, where it matters, the granted scopes and lease ttl.
/// Unless a case says otherwise it is Wednesday 12:00 UTC.
/// </summary>
[TestFixture]
public sealed class PolicyDecisionTableTests
{
    private static readonly DateTimeOffset Wednesday = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly PolicyDocument Policy = SamplePolicy.Load();
    private static readonly PolicyEngine Engine = new();

    private const string Allowed = "agent.allowed_scopes";
    private const DecisionOutcome Allow = DecisionOutcome.Allow;
    private const DecisionOutcome Deny = DecisionOutcome.Deny;
    private const DecisionOutcome Approval = DecisionOutcome.RequireApproval;

    /// <summary>A request: scopes space-separated, context "k=v k=v", holdings "scope scope | scope" (one lease per '|').</summary>
    public sealed record Req(string Agent, string Scopes, string Audience = "", int? TtlMinutes = null, string Context = "", string Held = "", DateTimeOffset? At = null);

    public sealed record Expect(DecisionOutcome Outcome, string[] Rules, string? Granted = null, int? LeaseTtlMinutes = null);

    private static TestCaseData C(string name, Req request, DecisionOutcome outcome, string[] rules, string? granted = null, int? leaseTtl = null) =>
        new TestCaseData(request, new Expect(outcome, rules, granted, leaseTtl)).SetName(name);

    public static IEnumerable<TestCaseData> Cases()
    {
        // triage-agent: tickets, an approval scope with a short token cap, audiences.
        yield return C("triage reads tickets", new("triage-agent", "tickets:read"), Allow, [Allowed], "tickets:read", 10);
        yield return C("triage reads and comments", new("triage-agent", "tickets:read tickets:comment"), Allow, [Allowed], "tickets:comment tickets:read");
        yield return C("triage uses its second audience", new("triage-agent", "kb:read kb:search", "kb-api"), Allow, [Allowed], "kb:read kb:search");
        yield return C("triage asks for another agent's audience", new("triage-agent", "tickets:read", "billing-api"), Deny, ["agent.audience"]);
        yield return C("triage asks for a disallowed scope", new("triage-agent", "tickets:delete"), Deny, ["agent.disallowed_scope"]);
        yield return C("disallowed wins within a mixed request", new("triage-agent", "tickets:read tickets:delete"), Deny, ["agent.disallowed_scope"]);
        yield return C("triage asks for an unknown scope", new("triage-agent", "admin:everything"), Deny, [Allowed]);
        yield return C("triage export needs approval", new("triage-agent", "tickets:export"), Approval, [Allowed, "agent.approval", "agent.token_ttl_cap"], "tickets:export");
        yield return C("approval covers the whole request", new("triage-agent", "tickets:read tickets:export"), Approval, [Allowed, "agent.approval", "agent.token_ttl_cap"], "tickets:export tickets:read");
        yield return C("a wildcard in a request is refused", new("triage-agent", "tickets:*"), Deny, ["request.scope_syntax"]);
        yield return C("a scope with bad characters is refused", new("triage-agent", "tickets:read!"), Deny, ["request.scope_syntax"]);
        yield return C("an over-long ttl is capped at max lease lifetime", new("triage-agent", "tickets:read", TtlMinutes: 120), Allow, [Allowed, "agent.lease_ttl_cap"], "tickets:read", 30);
        yield return C("a ttl within the max is kept", new("triage-agent", "tickets:read", TtlMinutes: 20), Allow, [Allowed], "tickets:read", 20);
        yield return C("a declared context label is fine", new("triage-agent", "tickets:read", Context: "environment=prod"), Allow, [Allowed]);
        yield return C("an undeclared context label is unclassifiable", new("triage-agent", "tickets:read", Context: "color=blue"), Deny, ["context.unclassifiable"]);
        yield return C("an undeclared context value is unclassifiable", new("triage-agent", "tickets:read", Context: "environment=qa"), Deny, ["context.unclassifiable"]);
        yield return C("EU personal data needs approval", new("triage-agent", "tickets:read", Context: "region=eu-west-1 data_class=pii"), Approval, [Allowed, "context.eu-pii-approval"], "tickets:read");
        yield return C("US personal data does not", new("triage-agent", "tickets:read", Context: "region=us-east-1 data_class=pii"), Allow, [Allowed]);
        yield return C("confidential prod data caps the lease", new("triage-agent", "tickets:read", Context: "environment=prod data_class=confidential"), Allow, [Allowed, "context.prod-confidential-short"], "tickets:read", 5);
        yield return C("duplicate scopes are granted once", new("triage-agent", "tickets:read tickets:read"), Allow, [Allowed], "tickets:read");
        yield return C("knowledge base scopes", new("triage-agent", "kb:search kb:read", "kb-api"), Allow, [Allowed], "kb:read kb:search");
        yield return C("an undefined agent gets nothing", new("ghost-agent", "tickets:read"), Deny, ["agent.defined"]);

        // code-agent: wildcard patterns, a disallowed repo, an approval pattern, a weekday window.
        yield return C("code reads a repo under the pattern", new("code-agent", "github.repo:read:example/web"), Allow, [Allowed], "github.repo:read:example/web");
        yield return C("code writes and opens a PR", new("code-agent", "github.repo:write:example/web github.pr:create:example/web"), Allow, [Allowed]);
        yield return C("code may never write the infra repo", new("code-agent", "github.repo:write:example/infra"), Deny, ["agent.disallowed_scope"]);
        yield return C("code may not write another org", new("code-agent", "github.repo:write:other/web"), Deny, [Allowed]);
        yield return C("a star matches one segment only", new("code-agent", "github.repo:read:example/web/wiki"), Deny, [Allowed]);
        yield return C("admin is disallowed for every repo", new("code-agent", "github.repo:admin:example/web"), Deny, ["agent.disallowed_scope"]);
        yield return C("merging needs approval", new("code-agent", "github.repo:merge:example/web"), Approval, [Allowed, "agent.approval"]);
        yield return C("code on a Saturday is outside its window", new("code-agent", "github.repo:read:example/web", At: Wednesday.AddDays(3)), Deny, ["agent.time_window"]);
        yield return C("code before 06:00 is outside its window", new("code-agent", "github.repo:read:example/web", At: Wednesday.AddHours(-6).AddMinutes(-1)), Deny, ["agent.time_window"]);
        yield return C("the window's end is exclusive", new("code-agent", "github.repo:read:example/web", At: Wednesday.AddHours(8)), Deny, ["agent.time_window"]);
        yield return C("one minute before the end is inside", new("code-agent", "github.repo:read:example/web", At: Wednesday.AddHours(8).AddMinutes(-1)), Allow, [Allowed]);
        yield return C("code asks for a foreign audience", new("code-agent", "github.repo:read:example/web", "tickets-api"), Deny, ["agent.audience"]);

        // research-agent: the secret-exfiltration pair, within a task and across the agent's leases.
        yield return C("research reads docs and the web", new("research-agent", "docs:read http:get:external"), Allow, [Allowed]);
        yield return C("research reads a secret", new("research-agent", "secrets:read:research-db"), Allow, [Allowed], "secrets:read:research-db");
        yield return C("secret plus web post in one task is toxic", new("research-agent", "secrets:read:research-db http:post:external"), Deny, [Allowed, "toxic.secret-exfiltration"]);
        yield return C("web post while another task holds a secret is toxic", new("research-agent", "http:post:external", Held: "secrets:read:api-keys"), Deny, [Allowed, "toxic.secret-exfiltration"]);
        yield return C("secret while another task can post is toxic", new("research-agent", "secrets:read:api-keys", Held: "docs:read | http:post:external"), Deny, [Allowed, "toxic.secret-exfiltration"]);
        yield return C("web post next to harmless holdings is fine", new("research-agent", "http:post:external", Held: "docs:read"), Allow, [Allowed]);
        yield return C("the production database secret is disallowed", new("research-agent", "secrets:read:prod-db"), Deny, ["agent.disallowed_scope"]);
        yield return C("in prod the web post is dropped", new("research-agent", "http:post:external http:get:external", Context: "environment=prod"), Allow, [Allowed, "context.prod-no-web-post"], "http:get:external");
        yield return C("in prod a lone web post leaves nothing", new("research-agent", "http:post:external", Context: "environment=prod"), Deny, [Allowed, "context.prod-no-web-post", "request.nothing_granted"]);
        yield return C("dropping the post defuses the toxic pair", new("research-agent", "secrets:read:x http:post:external", Context: "environment=prod"), Allow, [Allowed, "context.prod-no-web-post"], "secrets:read:x");
        yield return C("a pair held elsewhere is not this request's doing", new("research-agent", "docs:read", Held: "secrets:read:a http:post:external"), Allow, [Allowed]);
        yield return C("a pattern in a request is refused", new("research-agent", "secrets:read:*"), Deny, ["request.scope_syntax"]);

        // finance-agent: required context, business hours, an approval scope that is toxic with invoice edits.
        yield return C("finance reads invoices in prod", new("finance-agent", "invoices:read", "billing-api", Context: "environment=prod"), Allow, [Allowed]);
        yield return C("finance without environment is refused", new("finance-agent", "invoices:read"), Deny, ["agent.context"]);
        yield return C("finance in dev is refused", new("finance-agent", "invoices:read", Context: "environment=dev"), Deny, ["agent.context"]);
        yield return C("finance on a Sunday is refused", new("finance-agent", "invoices:read", Context: "environment=prod", At: Wednesday.AddDays(4)), Deny, ["agent.time_window"]);
        yield return C("creating a payment needs approval", new("finance-agent", "payments:create", "payments-api", Context: "environment=prod"), Approval, [Allowed, "agent.approval", "agent.token_ttl_cap"]);
        yield return C("editing invoices and paying in one task is toxic", new("finance-agent", "invoices:write payments:create", Context: "environment=prod"), Deny, [Allowed, "toxic.pay-own-invoice"]);
        yield return C("paying while another task edits invoices is toxic", new("finance-agent", "payments:create", "payments-api", Context: "environment=prod", Held: "invoices:write"), Deny, [Allowed, "toxic.pay-own-invoice"]);
        yield return C("invoice edits get a short token cap", new("finance-agent", "invoices:write", Context: "environment=staging"), Allow, [Allowed, "agent.token_ttl_cap"]);
        yield return C("finance reads payments on its second audience", new("finance-agent", "payments:read", "payments-api", Context: "environment=prod"), Allow, [Allowed]);
        yield return C("finance with confidential prod data gets a short lease", new("finance-agent", "invoices:read", Context: "environment=prod data_class=confidential"), Allow, [Allowed, "context.prod-confidential-short"], "invoices:read", 5);

        // data-agent: required region and data class, residency and GDPR rules, a within-task toxic pair.
        yield return C("data reads a table", new("data-agent", "warehouse:read:sales", Context: "region=us-east-1 data_class=internal"), Allow, [Allowed]);
        yield return C("data without region and class is refused", new("data-agent", "warehouse:read:sales"), Deny, ["agent.context"]);
        yield return C("data may never read HR", new("data-agent", "warehouse:read:hr", Context: "region=us-east-1 data_class=internal"), Deny, ["agent.disallowed_scope"]);
        yield return C("customers and export in one task is toxic", new("data-agent", "customers:read warehouse:export:sales", Context: "region=us-east-1 data_class=internal"), Deny, [Allowed, "toxic.customer-data-egress"]);
        yield return C("a within-task pair ignores other leases", new("data-agent", "warehouse:export:sales", Context: "region=us-east-1 data_class=internal", Held: "customers:read"), Allow, [Allowed]);
        yield return C("no export out of ap-south-1", new("data-agent", "warehouse:export:sales", Context: "region=ap-south-1 data_class=internal"), Deny, [Allowed, "context.data-residency-ap-south"]);
        yield return C("reading in ap-south-1 is fine", new("data-agent", "warehouse:read:sales", Context: "region=ap-south-1 data_class=internal"), Allow, [Allowed]);
        yield return C("EU customer records need approval", new("data-agent", "customers:read", Context: "region=eu-west-1 data_class=pii"), Approval, [Allowed, "context.eu-pii-approval"], "customers:read");
        yield return C("EU pii export needs approval", new("data-agent", "warehouse:export:eu", Context: "region=eu-central-1 data_class=pii"), Approval, [Allowed, "context.eu-pii-approval"]);
        yield return C("an unknown data class is unclassifiable", new("data-agent", "warehouse:read:sales", Context: "region=eu-west-1 data_class=secret"), Deny, ["context.unclassifiable"]);

        // ops-agent: restarts, a disallowed namespace, scaling behind approval, a short lifetime.
        yield return C("ops inspects and restarts", new("ops-agent", "k8s:read:payments k8s:restart:payments"), Allow, [Allowed], "k8s:read:payments k8s:restart:payments", 5);
        yield return C("ops may never restart kube-system", new("ops-agent", "k8s:restart:kube-system"), Deny, ["agent.disallowed_scope"]);
        yield return C("ops may never delete", new("ops-agent", "k8s:delete:payments"), Deny, ["agent.disallowed_scope"]);
        yield return C("scaling needs approval", new("ops-agent", "k8s:scale:payments"), Approval, [Allowed, "agent.approval"]);
        yield return C("ops lease is capped at 20 minutes", new("ops-agent", "k8s:read:payments", TtlMinutes: 60), Allow, [Allowed, "agent.lease_ttl_cap"], "k8s:read:payments", 20);
        yield return C("an extra segment does not match a star", new("ops-agent", "k8s:read:payments:pods"), Deny, [Allowed]);
    }

    [TestCaseSource(nameof(Cases))]
    public void Decide(Req request, Expect expected)
    {
        var agent = Policy.Agents.Find(request.Agent);

        var decision = Engine.Evaluate(Policy, agent, ToTaskRequest(request), request.At ?? Wednesday);

        Assert.That(decision.Outcome, Is.EqualTo(expected.Outcome), decision.Reason);
        Assert.That(decision.RuleIds, Is.EqualTo(expected.Rules), decision.Reason);
        if (expected.Granted is { } granted)
        {
            Assert.That(decision.GrantedScopes, Is.EqualTo(granted.Split(' ')));
        }

        if (expected.LeaseTtlMinutes is { } minutes)
        {
            Assert.That(decision.LeaseTtl, Is.EqualTo(TimeSpan.FromMinutes(minutes)));
        }

        if (decision.Outcome == DecisionOutcome.Deny)
        {
            Assert.That(decision.GrantedScopes, Is.Empty, "a denial grants nothing");
            Assert.That(decision.Reason, Is.Not.Empty);
        }
        else
        {
            Assert.That(decision.GrantedScopes, Has.None.Contains("*"), "tokens only ever carry concrete scopes");
        }
    }

    [Test]
    public void TheTableHasAtLeastSixtyCases() => Assert.That(Cases().Count(), Is.GreaterThanOrEqualTo(60));

    [Test]
    public void Explain_ListsEveryRuleEvaluated_InPipelineOrder()
    {
        var request = ToTaskRequest(new Req("research-agent", "secrets:read:x http:post:external", Context: "environment=prod"));

        var decision = Engine.Evaluate(Policy, Policy.Agents.Find("research-agent"), request, Wednesday, explain: true);

        Assert.That(decision.Steps.Select(s => s.RuleId).Take(7), Is.EqualTo(new[]
        {
            "request.scope_syntax", "context.unclassifiable", "agent.audience", "agent.context", "agent.time_window", "agent.disallowed_scope", Allowed,
        }));
        Assert.That(decision.Steps.Where(s => s.Effect == "narrow").Select(s => s.RuleId), Is.EqualTo(new[] { "context.prod-no-web-post" }));
        Assert.That(decision.Steps.Select(s => s.RuleId), Does.Contain("toxic.secret-exfiltration"), "passed toxic checks are listed too");
    }

    internal static TaskRequest ToTaskRequest(Req r) => new(
        r.Agent, "task-1", "table test", r.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries), r.Audience,
        r.TtlMinutes is { } m ? TimeSpan.FromMinutes(m) : null,
        r.Context.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(kv => kv.Split('=')).ToDictionary(kv => kv[0], kv => kv[1]))
    {
        Holdings = r.Held.Split('|', StringSplitOptions.RemoveEmptyEntries)
            .Select((scopes, i) => new HeldLease($"lease-{i}", $"other-task-{i}", scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            .ToList(),
    };
}
