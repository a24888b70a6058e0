namespace CredBroker.Core.Broker;

/// <summary>Input checks shared by every broker operation; each failure says what to fix.</summary>
internal static class RequestValidator
{
    public static void TaskId(string taskId)
    {
        if (string.IsNullOrEmpty(taskId))
        {
            throw Invalid("task_id is required: the runtime's own id for the task (also the idempotency key).");
        }

        if (!Syntax.TaskId().IsMatch(taskId))
        {
            throw Invalid("task_id must be 1-128 characters of letters, digits and ._:/- starting with a letter or digit.");
        }
    }

    public static void AgentId(string agentId)
    {
        if (!Syntax.AgentId().IsMatch(agentId ?? string.Empty))
        {
            throw Invalid("agent_id must be 1-64 characters of lower-case letters, digits, '.', '_' or '-'.");
        }
    }

    public static void LeaseId(string leaseId)
    {
        if (string.IsNullOrEmpty(leaseId))
        {
            throw Invalid("lease_id is required.");
        }

        if (leaseId.Length > 64)
        {
            throw Invalid("lease_id is not a lease id (too long); pass the lease_id BeginTask returned.");
        }

        foreach (var c in leaseId)
        {
            if (c is < '\x21' or > '\x7E')
            {
                throw Invalid("lease_id is not a lease id (it contains spaces, control or non-ASCII characters); pass the lease_id BeginTask returned.");
            }
        }
    }

    public static void Scopes(IReadOnlyList<string> scopes, bool required)
    {
        if (required && scopes.Count == 0)
        {
            throw Invalid("scopes: request at least one scope.");
        }

        if (scopes.Count > Syntax.MaxScopesPerRequest)
        {
            throw Invalid($"scopes: at most {Syntax.MaxScopesPerRequest} scopes per request (got {scopes.Count}).");
        }

        foreach (var scope in scopes)
        {
            if (!Syntax.Scope().IsMatch(scope))
            {
                throw Invalid($"scopes: '{Truncate(scope)}' is not a concrete scope (1-128 characters of letters, digits and ._:/-; no wildcards or spaces).");
            }
        }
    }

    public static void Audience(string audience)
    {
        if (audience.Length > 0 && !Syntax.Audience().IsMatch(audience))
        {
            throw Invalid("audience must be 1-256 printable ASCII characters without spaces.");
        }
    }

    public static void Purpose(string purpose)
    {
        if (purpose.Length > Syntax.MaxPurposeLength)
        {
            throw Invalid($"purpose is limited to {Syntax.MaxPurposeLength} characters.");
        }
    }

    public static void Duration(TimeSpan? duration, string field)
    {
        if (duration is { } d && d <= TimeSpan.Zero)
        {
            throw Invalid($"{field} must be positive when given (omit it for the agent's default).");
        }
    }

    public static void Context(IReadOnlyDictionary<string, string> context)
    {
        if (context.Count > Syntax.MaxContextLabels)
        {
            throw Invalid($"context: at most {Syntax.MaxContextLabels} labels.");
        }

        foreach (var (key, value) in context)
        {
            if (!Syntax.ContextKey().IsMatch(key))
            {
                throw Invalid($"context: label key '{Truncate(key)}' must be a lower-case identifier of up to 64 characters.");
            }

            if (value.Length > Syntax.MaxContextValueLength)
            {
                throw Invalid($"context: the value of '{key}' is limited to {Syntax.MaxContextValueLength} characters.");
            }
        }
    }

    private static BrokerException Invalid(string message) => new(BrokerErrorKind.InvalidArgument, message);

    private static string Truncate(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
