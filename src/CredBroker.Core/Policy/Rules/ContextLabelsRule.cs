namespace CredBroker.Core.Policy.Rules;

/// <summary><c>context.unclassifiable</c>: every context label must be declared in the policy's vocabulary with a declared value.</summary>
public sealed class ContextLabelsRule : IPolicyRule
{
    public string Id => "context.unclassifiable";

    public void Evaluate(PolicyEvaluation e)
    {
        if (e.Request.Context.Count == 0)
        {
            e.Pass(Id);
            return;
        }

        foreach (var (key, value) in e.Request.Context)
        {
            if (!e.Policy.ContextLabels.TryGetValue(key, out var values))
            {
                e.Deny(Id, $"Context label '{key}' is not one the policy classifies (known: {string.Join(", ", e.Policy.ContextLabels.Keys.Order(StringComparer.Ordinal))}); remove it or ask the policy owner to declare it.");
                return;
            }

            if (!values.Contains(value))
            {
                e.Deny(Id, $"Context label {key}='{Clip(value)}' is not a known value (one of: {string.Join(", ", values.Order(StringComparer.Ordinal))}).");
                return;
            }
        }

        e.Pass(Id);
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
