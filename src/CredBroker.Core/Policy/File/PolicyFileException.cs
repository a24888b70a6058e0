namespace CredBroker.Core.Policy.File;

/// <summary>One problem in a policy file, located: <c>file:line:column: field: message</c>.</summary>
public sealed record PolicyError(string Source, int Line, int Column, string Field, string Message)
{
    public override string ToString() => $"{Source}:{Line}:{Column}: {Field}: {Message}";
}

/// <summary>A policy file that cannot be used; <see cref="Errors"/> lists every problem found (the file is rejected whole).</summary>
public class PolicyFileException(IReadOnlyList<PolicyError> errors, Exception? innerException = null)
    : Exception(string.Join(Environment.NewLine, errors), innerException)
{
    public IReadOnlyList<PolicyError> Errors { get; } = errors;
}

/// <summary>A policy input over a size, depth or node-count limit (callers answer INVALID_ARGUMENT naming the limit).</summary>
public sealed class PolicyLimitException(PolicyError error) : PolicyFileException([error]);
