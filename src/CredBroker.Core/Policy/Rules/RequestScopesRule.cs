namespace CredBroker.Core.Policy.Rules;

/// <summary><c>request.scope_syntax</c>: requests carry concrete scopes only; a pattern or bad syntax is denied (fail closed).</summary>
public sealed class RequestScopesRule : IPolicyRule
{
    public string Id => "request.scope_syntax";

    public void Evaluate(PolicyEvaluation e)
    {
        if (e.Scopes.Count == 0)
        {
            e.Deny(Id, "No scopes were requested; request at least one concrete scope.");
            return;
        }

        foreach (var scope in e.Scopes)
        {
            if (!IsConcrete(scope))
            {
                e.Deny(Id, $"'{Clip(scope)}' is not a concrete scope (letters, digits and ._:/-; no wildcards): request the exact scopes the task needs.");
                return;
            }
        }

        e.Pass(Id);
    }

    /// <summary>The concrete scope syntax (<see cref="Broker.Syntax.Scope"/>) checked by hand: this runs on every decision.</summary>
    public static bool IsConcrete(string scope)
    {
        if (scope.Length is 0 or > 128 || !char.IsAsciiLetterOrDigit(scope[0]))
        {
            return false;
        }

        foreach (var c in scope)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or ':' or '/' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
