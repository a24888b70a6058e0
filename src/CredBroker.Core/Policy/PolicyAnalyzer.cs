using CredBroker.Core.Agents;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Policy;

/// <summary>What static analysis found: <c>kind</c> (toxic_reachable, missing_owner, missing_purpose, unreachable_scope, unknown_agent, invalid), where and why.</summary>
public sealed record PolicyFinding(string Kind, string AgentId, string RuleId, string Detail);

/// <summary>
/// Static checks over a policy, without any request: which agents' grantable scopes (allowed or
/// approval, minus disallowed) can reach a toxic combination (the broker then denies at request
/// time, but the definition is worth a second look), which scope patterns the rules name but no
/// agent can ever get, and, for a candidate file that fails validation, which agents lack an
/// owner or purpose.
/// </summary>
public static class PolicyAnalyzer
{
    public static IReadOnlyList<PolicyFinding> Analyze(PolicyDocument policy)
    {
        var findings = new List<PolicyFinding>();
        var agents = policy.Agents.All.OrderBy(a => a.Id, StringComparer.Ordinal).ToList();
        foreach (var agent in agents)
        {
            foreach (var combination in policy.ToxicCombinations)
            {
                var via = combination.Scopes.Select(p => Grantable(agent, p)).ToList();
                if (via.All(v => v is not null))
                {
                    var where = combination.Within == ToxicScope.Task ? "within one task" : "within one task or across its concurrent tasks";
                    findings.Add(new PolicyFinding("toxic_reachable", agent.Id, combination.RuleId,
                        $"agent '{agent.Id}' may be granted {string.Join(" + ", via.Select(v => v!.Text))} ({where}); requests reaching it are denied by {combination.RuleId}."));
                }
            }
        }

        var referenced = policy.ToxicCombinations.SelectMany(c => c.Scopes.Select(s => (Pattern: s, Rule: c.RuleId)))
            .Concat(policy.ContextRules.SelectMany(r => r.Scopes.Patterns.Select(s => (Pattern: s, Rule: r.RuleId))))
            .Concat(agents.SelectMany(a => a.ScopeTtlCaps.Select(c => (Pattern: c.Pattern, Rule: $"agent.{a.Id}.scope_ttl_caps"))));
        foreach (var (pattern, rule) in referenced.DistinctBy(r => (r.Pattern.Text, r.Rule)))
        {
            if (!agents.Any(a => Grantable(a, pattern) is not null))
            {
                findings.Add(new PolicyFinding("unreachable_scope", string.Empty, rule,
                    $"no agent can ever be granted a scope matching '{pattern}' (named by {rule}): the rule never applies."));
            }
        }

        foreach (var agent in agents)
        {
            foreach (var pattern in agent.Allowed.Patterns.Concat(agent.Approval.Patterns).Where(p => Grantable(agent, p) is null))
            {
                findings.Add(new PolicyFinding("unreachable_scope", agent.Id, "agent.disallowed_scope",
                    $"agent '{agent.Id}' lists '{pattern}' but its disallowed scopes cover it: it can never be granted."));
            }
        }

        foreach (var rule in policy.ContextRules)
        {
            foreach (var agentId in rule.Agents.Where(a => policy.Agents.Find(a) is null).Order(StringComparer.Ordinal))
            {
                findings.Add(new PolicyFinding("unknown_agent", agentId, rule.RuleId, $"{rule.RuleId} names agent '{agentId}', which is not defined."));
            }
        }

        return findings;
    }

    /// <summary>Findings for a candidate file that failed validation: missing owners and purposes by name, the rest as <c>invalid</c>.</summary>
    public static IReadOnlyList<PolicyFinding> FromErrors(IReadOnlyList<PolicyError> errors) =>
        errors.Select(e => new PolicyFinding(
            e.Field.EndsWith(".owner", StringComparison.Ordinal) ? "missing_owner"
            : e.Field.EndsWith(".purpose", StringComparison.Ordinal) ? "missing_purpose"
            : "invalid",
            string.Empty, string.Empty, e.ToString())).ToList();

    /// <summary>An agent pattern through which <paramref name="pattern"/> can be granted (overlapping, not wholly disallowed), or null.</summary>
    private static ScopePattern? Grantable(AgentDefinition agent, ScopePattern pattern) =>
        agent.Allowed.Patterns.Concat(agent.Approval.Patterns)
            .FirstOrDefault(p => p.Overlaps(pattern) && !agent.Disallowed.Patterns.Any(d => p.IsCoveredBy(d) || pattern.IsCoveredBy(d)));
}
