namespace CredBroker.Core.Policy.Rules;

/// <summary><c>context.&lt;id&gt;</c>: the policy's context rules, in file order.</summary>
public sealed class ContextRulesRule : IPolicyRule
{
    public string Id => "context.*";

    public void Evaluate(PolicyEvaluation e)
    {
        var rules = e.Policy.ContextRules;
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            if (!rule.AppliesTo(e.Agent.Id, e.Request.Context))
            {
                e.Pass(rule.RuleId, "context does not match");
                continue;
            }

            var why = rule.Description.Length > 0 ? rule.Description : $"context rule '{rule.Id}'";
            foreach (var scope in e.Scopes.ToArray())
            {
                if (!rule.Covers(scope))
                {
                    continue;
                }

                switch (rule.Action)
                {
                    case ContextAction.Deny:
                        e.Deny(rule.RuleId, $"Scope '{scope}' is not available in this context ({ContextText(rule)}): {why}.");
                        return;
                    case ContextAction.RequireApproval:
                        e.NeedApproval(rule.RuleId, scope, $"Scope '{scope}' needs human approval in this context ({ContextText(rule)}): {why}.");
                        break;
                    case ContextAction.DropScopes:
                        e.Drop(rule.RuleId, scope, $"dropped '{scope}' in this context ({ContextText(rule)}): {why}");
                        break;
                    case ContextAction.CapTtl:
                        e.CapLease(rule.RuleId, rule.Ttl!.Value, $"lease capped at {rule.Ttl.Value} in this context ({ContextText(rule)}): {why}");
                        break;
                }
            }
        }

        if (e.Scopes.Count == 0)
        {
            e.Deny("request.nothing_granted", "Every requested scope was dropped by policy in this context; nothing is left to grant.");
        }
    }

    private static string ContextText(ContextRule rule) =>
        string.Join(", ", rule.When.Select(w => $"{w.Key} in [{string.Join(", ", w.Value.Order(StringComparer.Ordinal))}]"));
}
