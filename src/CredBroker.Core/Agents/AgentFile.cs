using System.Globalization;
using CredBroker.Core.Broker;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace CredBroker.Core.Agents;

/// <summary>
/// Loads the agent definition file (YAML). Every error names the file, the agent and the field
/// (and the line, for syntax errors), and a file with any error is rejected whole.
/// </summary>
public static class AgentFile
{
    public static AgentCatalog Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new AgentFileException($"{path}: agent file not found.");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static AgentCatalog Parse(string yaml, string source)
    {
        FileDto? file;
        try
        {
            file = new DeserializerBuilder()
                .WithNamingConvention(UnderscoredNamingConvention.Instance)
                .Build()
                .Deserialize<FileDto?>(yaml);
        }
        catch (YamlException e)
        {
            throw new AgentFileException($"{source}:{e.Start.Line}:{e.Start.Column}: {Innermost(e).Message}", e);
        }

        if (file?.Agents is not { Count: > 0 } agents)
        {
            throw new AgentFileException($"{source}: no agents defined (expected a top-level 'agents:' list).");
        }

        var errors = new List<string>();
        var definitions = new List<AgentDefinition>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < agents.Count; i++)
        {
            var where = $"{source}: agents[{i}]" + (agents[i].Id is { } id ? $" ({id})" : string.Empty);
            var definition = Validate(agents[i], where, errors);
            if (definition is not null && !seen.Add(definition.Id))
            {
                errors.Add($"{where}: id '{definition.Id}' is defined more than once.");
            }
            else if (definition is not null)
            {
                definitions.Add(definition);
            }
        }

        return errors.Count > 0
            ? throw new AgentFileException(string.Join(Environment.NewLine, errors))
            : new AgentCatalog(definitions);
    }

    private static AgentDefinition? Validate(AgentDto dto, string where, List<string> errors)
    {
        var before = errors.Count;
        Require(dto.Id is not null && Syntax.AgentId().IsMatch(dto.Id), where, "id", "required; lower-case letters, digits, '.', '_', '-' (max 64)", errors);
        Require(!string.IsNullOrWhiteSpace(dto.Owner), where, "owner", "required: every agent has a named owner", errors);
        Require(!string.IsNullOrWhiteSpace(dto.Purpose), where, "purpose", "required: every agent has an approved purpose", errors);
        Require(dto.Audiences is { Count: > 0 } && dto.Audiences.All(a => Syntax.Audience().IsMatch(a)), where, "audiences", "at least one audience, printable ASCII without spaces", errors);
        Require(dto.AllowedScopes is { Count: > 0 }, where, "allowed_scopes", "at least one scope", errors);
        var allowed = Scopes(dto.AllowedScopes, where, "allowed_scopes", errors);
        var disallowed = Scopes(dto.DisallowedScopes, where, "disallowed_scopes", errors);
        var approval = Scopes(dto.ApprovalScopes, where, "approval_scopes", errors);
        var maxTokenTtl = Duration(dto.MaxTokenTtl, TimeSpan.FromMinutes(15), where, "max_token_ttl", errors);
        var defaultLease = Duration(dto.DefaultLeaseTtl, TimeSpan.FromMinutes(15), where, "default_lease_ttl", errors);
        var maxLease = Duration(dto.MaxLeaseLifetime, TimeSpan.FromHours(1), where, "max_lease_lifetime", errors);
        Require(defaultLease <= maxLease, where, "default_lease_ttl", "must not exceed max_lease_lifetime", errors);
        Require(dto.MaxConcurrentLeases is null or (>= 1 and <= 100_000), where, "max_concurrent_leases", "between 1 and 100000", errors);
        Require(dto.MaxTasksPerMinute is null or (>= 1 and <= 1_000_000), where, "max_tasks_per_minute", "between 1 and 1000000", errors);
        foreach (var scope in allowed.Intersect(disallowed))
        {
            errors.Add($"{where}: scope '{scope}' is both allowed and disallowed; disallowed always wins, so remove it from allowed_scopes.");
        }

        if (errors.Count > before)
        {
            return null;
        }

        return new AgentDefinition
        {
            Id = dto.Id!,
            Owner = dto.Owner!.Trim(),
            Purpose = dto.Purpose!.Trim(),
            Audiences = dto.Audiences!,
            AllowedScopes = allowed,
            DisallowedScopes = disallowed,
            ApprovalScopes = approval,
            MaxTokenTtl = maxTokenTtl,
            DefaultLeaseTtl = defaultLease,
            MaxLeaseLifetime = maxLease,
            MaxConcurrentLeases = dto.MaxConcurrentLeases ?? 100,
            MaxTasksPerMinute = dto.MaxTasksPerMinute ?? 600,
        };
    }

    private static HashSet<string> Scopes(List<string>? scopes, string where, string field, List<string> errors)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var scope in scopes ?? [])
        {
            if (!Syntax.Scope().IsMatch(scope ?? string.Empty))
            {
                errors.Add($"{where}: {field}: '{scope}' is not a concrete scope (letters, digits, ._:/-; no wildcards).");
            }
            else
            {
                set.Add(scope!);
            }
        }

        return set;
    }

    private static TimeSpan Duration(string? value, TimeSpan fallback, string where, string field, List<string> errors)
    {
        if (value is null)
        {
            return fallback;
        }

        if (TryParseDuration(value, out var duration) && duration > TimeSpan.Zero && duration <= TimeSpan.FromDays(1))
        {
            return duration;
        }

        errors.Add($"{where}: {field}: '{value}' is not a duration between 1s and 24h (e.g. 90s, 15m, 1h).");
        return fallback;
    }

    /// <summary>Parses <c>90s</c>, <c>15m</c>, <c>1h</c>.</summary>
    public static bool TryParseDuration(string value, out TimeSpan duration)
    {
        duration = default;
        if (value.Length < 2 || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return false;
        }

        switch (value[^1])
        {
            case 's': duration = TimeSpan.FromSeconds(n); return true;
            case 'm': duration = TimeSpan.FromMinutes(n); return true;
            case 'h': duration = TimeSpan.FromHours(n); return true;
            default: return false;
        }
    }

    private static void Require(bool condition, string where, string field, string rule, List<string> errors)
    {
        if (!condition)
        {
            errors.Add($"{where}: {field}: {rule}.");
        }
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    private sealed class FileDto
    {
        public List<AgentDto>? Agents { get; set; }
    }

    private sealed class AgentDto
    {
        public string? Id { get; set; }

        public string? Owner { get; set; }

        public string? Purpose { get; set; }

        public List<string>? Audiences { get; set; }

        public List<string>? AllowedScopes { get; set; }

        public List<string>? DisallowedScopes { get; set; }

        public List<string>? ApprovalScopes { get; set; }

        public string? MaxTokenTtl { get; set; }

        public string? DefaultLeaseTtl { get; set; }

        public string? MaxLeaseLifetime { get; set; }

        public int? MaxConcurrentLeases { get; set; }

        public int? MaxTasksPerMinute { get; set; }
    }
}

public sealed class AgentFileException(string message, Exception? innerException = null) : Exception(message, innerException);
