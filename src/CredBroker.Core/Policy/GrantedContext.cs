using CredBroker.Core.Broker;

namespace CredBroker.Core.Policy;

/// <summary>One granted context label and where its value came from: <c>asserted</c> (the agent's request) or <c>claim:&lt;name&gt;</c> (the verified workload credential).</summary>
public sealed record ContextLabel(string Key, string Value, string Source)
{
    public const string Asserted = "asserted";

    public bool IsVerified => Source != Asserted;
}

/// <summary>
/// The context a request is decided on: the labels the agent asserts, with every label the policy
/// declares <c>verified_context</c> taken from its verified source instead. An asserted value that
/// contradicts the verified one, or an asserted verified label the credential cannot vouch for, is
/// refused (PERMISSION_DENIED, rule <c>context.verified</c>); a verified label the agent left out is
/// filled in, so leaving a label out never dodges a rule that applies to it.
/// </summary>
public static class GrantedContext
{
    public const string RuleId = "context.verified";

    /// <summary>The granted labels, sorted by key; throws <see cref="BrokerException"/> (PermissionDenied, <see cref="RuleId"/>) on a contradiction.</summary>
    public static IReadOnlyList<ContextLabel> Resolve(
        PolicyDocument policy, IReadOnlyDictionary<string, string> asserted, IReadOnlyDictionary<string, string> verifiedClaims)
    {
        var granted = new SortedDictionary<string, ContextLabel>(StringComparer.Ordinal);
        foreach (var (key, value) in asserted)
        {
            granted[key] = new ContextLabel(key, value, ContextLabel.Asserted);
        }

        foreach (var (key, claim) in policy.VerifiedContext)
        {
            var hasClaim = verifiedClaims.TryGetValue(claim, out var verified) && verified.Length is > 0 and <= Syntax.MaxContextValueLength;
            if (asserted.TryGetValue(key, out var claimed))
            {
                if (!hasClaim)
                {
                    throw Refused($"Context label '{key}' is verified by policy: it comes from the workload credential's claim '{claim}', which this caller's credential does not carry; leave '{key}' out of the request.");
                }

                if (!string.Equals(claimed, verified, StringComparison.Ordinal))
                {
                    throw Refused($"Context label {key}='{Clip(claimed)}' contradicts the verified value '{Clip(verified!)}' from the workload credential's claim '{claim}'; send that value or leave '{key}' out.");
                }
            }

            if (hasClaim)
            {
                granted[key] = new ContextLabel(key, verified!, "claim:" + claim);
            }
        }

        return [.. granted.Values];
    }

    /// <summary>The label values as the policy rules read them.</summary>
    public static IReadOnlyDictionary<string, string> Values(IReadOnlyList<ContextLabel> labels) =>
        labels.ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);

    private static BrokerException Refused(string message) => new(BrokerErrorKind.PermissionDenied, message, [RuleId]);

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
