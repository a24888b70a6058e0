using CredBroker.Core.Agents;

namespace CredBroker.Core.Policy;

/// <summary>The state one request carries through the rule pipeline.</summary>
public sealed class PolicyEvaluation
{
    private readonly List<string> _fired = new(4);
    private readonly List<DecisionStep>? _steps;
    private List<string>? _dropped;
    private List<string>? _approval;
    private List<string>? _approvalReasons;

    public PolicyEvaluation(PolicyDocument policy, AgentDefinition agent, TaskRequest request, DateTimeOffset now, bool explain)
    {
        Policy = policy;
        Agent = agent;
        Request = request;
        Now = now;
        Scopes = new List<string>(request.Scopes.Count);
        for (var i = 0; i < request.Scopes.Count; i++)
        {
            if (!Scopes.Contains(request.Scopes[i]))
            {
                Scopes.Add(request.Scopes[i]);
            }
        }

        Audience = string.IsNullOrEmpty(request.Audience) ? agent.Audiences[0] : request.Audience;
        LeaseTtl = request.LeaseTtl ?? agent.DefaultLeaseTtl;
        _steps = explain ? [] : null;
    }

    public PolicyDocument Policy { get; }

    public AgentDefinition Agent { get; }

    public TaskRequest Request { get; }

    public DateTimeOffset Now { get; }

    /// <summary>The scopes still granted (requested, deduplicated, minus what rules dropped).</summary>
    public List<string> Scopes { get; }

    public string Audience { get; }

    public TimeSpan LeaseTtl { get; set; }

    public TimeSpan? MaxLeaseLifetime { get; private set; }

    public bool Denied { get; private set; }

    public string? DenyReason { get; private set; }

    public bool Explaining => _steps is not null;

    public void Pass(string ruleId, string detail = "") => _steps?.Add(new DecisionStep(ruleId, "pass", detail));

    public void Allow(string ruleId, string detail)
    {
        _fired.Add(ruleId);
        _steps?.Add(new DecisionStep(ruleId, "allow", detail));
    }

    public void Deny(string ruleId, string reason)
    {
        _fired.Add(ruleId);
        _steps?.Add(new DecisionStep(ruleId, "deny", reason));
        Denied = true;
        DenyReason = reason;
    }

    public void Drop(string ruleId, string scope, string reason)
    {
        Scopes.Remove(scope);
        (_dropped ??= []).Add(scope);
        Fire(ruleId, "narrow", reason);
    }

    public void CapLease(string ruleId, TimeSpan cap, string reason)
    {
        LeaseTtl = LeaseTtl > cap ? cap : LeaseTtl;
        MaxLeaseLifetime = MaxLeaseLifetime is { } current && current < cap ? current : cap;
        Fire(ruleId, "narrow", reason);
    }

    /// <summary>A narrowing that changes no scope list (such as a token lifetime cap).</summary>
    public void Narrow(string ruleId, string detail) => Fire(ruleId, "narrow", detail);

    public void NeedApproval(string ruleId, string scope, string reason)
    {
        if (!(_approval ??= []).Contains(scope))
        {
            _approval.Add(scope);
        }

        if (!(_approvalReasons ??= []).Contains(reason))
        {
            _approvalReasons.Add(reason);
        }

        Fire(ruleId, "approval", reason);
    }

    /// <summary>Records a narrowing/approval rule once in the fired list however many scopes it touched.</summary>
    private void Fire(string ruleId, string effect, string detail)
    {
        if (_fired.Count == 0 || _fired[^1] != ruleId)
        {
            _fired.Add(ruleId);
        }

        _steps?.Add(new DecisionStep(ruleId, effect, detail));
    }

    public Decision ToDecision()
    {
        var fired = _fired.ToArray();
        if (Denied)
        {
            return new Decision(DecisionOutcome.Deny, [], Audience, TimeSpan.Zero, fired, DenyReason!)
            {
                DroppedScopes = _dropped ?? [],
                Steps = _steps ?? [],
            };
        }

        var granted = Scopes.ToArray();
        if (granted.Length > 1)
        {
            Array.Sort(granted, StringComparer.Ordinal);
        }
        var outcome = _approval is { Count: > 0 } ? DecisionOutcome.RequireApproval : DecisionOutcome.Allow;
        var reason = outcome == DecisionOutcome.RequireApproval
            ? string.Join(" ", _approvalReasons!)
            : _dropped is { Count: > 0 } ? $"allowed, narrowed: dropped {string.Join(", ", _dropped)}" : "allowed";
        return new Decision(outcome, granted, Audience, LeaseTtl, fired, reason)
        {
            DroppedScopes = _dropped ?? [],
            ApprovalScopes = _approval?.Order(StringComparer.Ordinal).ToArray() ?? [],
            MaxLeaseLifetime = MaxLeaseLifetime,
            Steps = _steps ?? [],
        };
    }
}
