using System.Text.RegularExpressions;

namespace CredBroker.Core.Broker;

/// <summary>Bounded, explicit syntax for every identifier that crosses the wire or the agent file.</summary>
public static partial class Syntax
{
    public const int MaxScopesPerRequest = 32;
    public const int MaxContextLabels = 32;
    public const int MaxPurposeLength = 256;
    public const int MaxContextValueLength = 128;
    public const int MaxTokenLength = 8 * 1024;

    /// <summary>Agent ids: lower-case letters, digits, '.', '_' and '-', up to 64 characters.</summary>
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}\\z", RegexOptions.CultureInvariant)]
    public static partial Regex AgentId();

    /// <summary>Task ids: letters, digits and ._:/- up to 128 characters.</summary>
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\\z", RegexOptions.CultureInvariant)]
    public static partial Regex TaskId();

    /// <summary>Concrete scopes such as <c>tickets:read</c> or <c>github.repo:write:org/repo</c>; never wildcards.</summary>
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\\z", RegexOptions.CultureInvariant)]
    public static partial Regex Scope();

    /// <summary>Audiences: an API name or URL, printable ASCII without spaces, up to 256 characters.</summary>
    [GeneratedRegex("^[\\x21-\\x7E]{1,256}\\z", RegexOptions.CultureInvariant)]
    public static partial Regex Audience();

    /// <summary>Context label keys: lower-case identifiers up to 64 characters.</summary>
    [GeneratedRegex("^[a-z][a-z0-9_.-]{0,63}\\z", RegexOptions.CultureInvariant)]
    public static partial Regex ContextKey();
}
