using CredBroker.Core.Agents;
using CredBroker.Core.Policy.Rules;

namespace CredBroker.Core.Policy;

/// <summary>
/// Runs the ordered rule pipeline over a request. The default order: syntax → context
/// classification → audience → agent conditions → disallowed → allowed → context rules → toxic
/// combinations → approval → ttl caps. The first deny ends it; otherwise the decision is
/// require-approval when any rule asked for it, else allow (possibly narrowed).
/// </summary>
public sealed class PolicyEngine(IReadOnlyList<IPolicyRule> rules)
{
    public const string UndefinedAgentRule = "agent.defined";

    public static IReadOnlyList<IPolicyRule> DefaultRules { get; } =
    [
        new RequestScopesRule(), new ContextLabelsRule(), new AudienceRule(), new AgentConditionsRule(), new DisallowedScopesRule(),
        new AllowedScopesRule(), new ContextRulesRule(), new ToxicCombinationRule(), new ApprovalScopesRule(), new LeaseTtlRule(),
    ];

    public PolicyEngine()
        : this(DefaultRules)
    {
    }

    public IReadOnlyList<IPolicyRule> Rules => rules;

    public Decision Evaluate(PolicyDocument policy, AgentDefinition? agent, TaskRequest request, DateTimeOffset now, bool explain = false)
    {
        if (agent is null)
        {
            var reason = $"No agent definition for '{request.AgentId}': an agent must be defined (owner, purpose, scopes) before it gets tokens.";
            return new Decision(DecisionOutcome.Deny, [], string.Empty, TimeSpan.Zero, [UndefinedAgentRule], reason)
            {
                Steps = explain ? [new DecisionStep(UndefinedAgentRule, "deny", reason)] : [],
            };
        }

        var evaluation = new PolicyEvaluation(policy, agent, request, now, explain);
        foreach (var rule in rules)
        {
            rule.Evaluate(evaluation);
            if (evaluation.Denied)
            {
                break;
            }
        }

        return evaluation.ToDecision();
    }
}
