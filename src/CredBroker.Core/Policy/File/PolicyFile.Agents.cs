using System.Globalization;
using CredBroker.Core.Agents;
using YamlDotNet.RepresentationModel;

namespace CredBroker.Core.Policy.File;

/// <summary>The <c>agents:</c> entries.</summary>
public static partial class PolicyFile
{
    private static readonly string[] AgentFields =
    [
        "id", "owner", "purpose", "identities", "audiences", "allowed_scopes", "disallowed_scopes", "approval_scopes", "scope_ttl_caps",
        "max_token_ttl", "default_lease_ttl", "max_lease_lifetime", "max_concurrent_leases", "max_tasks_per_minute", "conditions",
        "sender_constrained",
    ];

    private static readonly Dictionary<string, DayOfWeek> Days = new(StringComparer.Ordinal)
    {
        ["mon"] = DayOfWeek.Monday, ["tue"] = DayOfWeek.Tuesday, ["wed"] = DayOfWeek.Wednesday, ["thu"] = DayOfWeek.Thursday,
        ["fri"] = DayOfWeek.Friday, ["sat"] = DayOfWeek.Saturday, ["sun"] = DayOfWeek.Sunday,
    };

    private static AgentDefinition? ReadAgent(YamlNode node, string field, YamlFields fields, IReadOnlyDictionary<string, IReadOnlySet<string>> vocabulary)
    {
        if (fields.Mapping(node, field, AgentFields) is not { } map)
        {
            return null;
        }

        var before = fields.Errors.Count;
        var id = fields.String(map, "id", field, node, required: true);
        if (id is not null && !Broker.Syntax.AgentId().IsMatch(id))
        {
            fields.Error(map["id"], field + ".id", "lower-case letters, digits, '.', '_', '-' (max 64).");
        }

        var owner = fields.String(map, "owner", field, node, required: true, why: "required: every agent has a named owner.");
        var purpose = fields.String(map, "purpose", field, node, required: true, why: "required: every agent has an approved purpose.");

        var identities = fields.StringList(map, "identities", field).Select(i => i.Value).ToList();
        var audiences = fields.StringList(map, "audiences", field);
        if (audiences.Count == 0)
        {
            fields.Error(map.GetValueOrDefault("audiences") ?? node, field + ".audiences", "at least one audience (the downstream APIs its tokens are for).");
        }

        foreach (var (audience, audienceNode) in audiences.Where(a => !Broker.Syntax.Audience().IsMatch(a.Value)))
        {
            fields.Error(audienceNode, field + ".audiences", $"'{audience}' is not an audience (printable ASCII without spaces).");
        }

        var allowed = Patterns(map, "allowed_scopes", field, fields);
        if (allowed.Count == 0 && !map.ContainsKey("approval_scopes"))
        {
            fields.Error(map.GetValueOrDefault("allowed_scopes") ?? node, field + ".allowed_scopes", "at least one scope pattern (the agent's tools).");
        }

        var disallowed = Patterns(map, "disallowed_scopes", field, fields);
        var approval = Patterns(map, "approval_scopes", field, fields);
        foreach (var both in allowed.Concat(approval).Where(p => disallowed.Any(p.IsCoveredBy)))
        {
            fields.Error(map.GetValueOrDefault("allowed_scopes") ?? node, field + ".allowed_scopes",
                $"'{both}' is also disallowed; disallowed always wins, so remove it.");
        }

        var caps = new List<ScopeTtlCap>();
        if (map.TryGetValue("scope_ttl_caps", out var capsNode) && fields.Mapping(capsNode, field + ".scope_ttl_caps") is { } capMap)
        {
            foreach (var (pattern, _) in capMap)
            {
                var ttl = fields.Duration(capMap, pattern, field + ".scope_ttl_caps");
                if (!ScopePattern.TryParse(pattern, out var parsed))
                {
                    fields.Error(capMap[pattern], $"{field}.scope_ttl_caps.{pattern}", "not a scope pattern.");
                }
                else if (ttl is { } t)
                {
                    caps.Add(new ScopeTtlCap(parsed, t));
                }
            }
        }

        var (senderConstrained, senderConstrainedScopes) = ReadSenderConstrained(map, field, fields);
        var maxTokenTtl = fields.Duration(map, "max_token_ttl", field) ?? TimeSpan.FromMinutes(15);
        var defaultLease = fields.Duration(map, "default_lease_ttl", field) ?? TimeSpan.FromMinutes(15);
        var maxLease = fields.Duration(map, "max_lease_lifetime", field) ?? TimeSpan.FromHours(1);
        if (defaultLease > maxLease)
        {
            fields.Error(map.GetValueOrDefault("default_lease_ttl") ?? node, field + ".default_lease_ttl", "must not exceed max_lease_lifetime.");
        }

        var maxConcurrent = fields.Int(map, "max_concurrent_leases", field, 1, 100_000);
        var maxPerMinute = fields.Int(map, "max_tasks_per_minute", field, 1, 1_000_000);
        var (required, windows) = map.TryGetValue("conditions", out var conditions)
            ? ReadConditions(conditions, field + ".conditions", fields, vocabulary)
            : ([], []);
        if (fields.Errors.Count > before)
        {
            return null;
        }

        return new AgentDefinition
        {
            Id = id!,
            Owner = owner!.Trim(),
            Purpose = purpose!.Trim(),
            Identities = identities,
            Audiences = audiences.Select(a => a.Value).ToList(),
            AllowedScopes = allowed.Select(p => p.Text).ToHashSet(StringComparer.Ordinal),
            DisallowedScopes = disallowed.Select(p => p.Text).ToHashSet(StringComparer.Ordinal),
            ApprovalScopes = approval.Select(p => p.Text).ToHashSet(StringComparer.Ordinal),
            ScopeTtlCaps = caps,
            SenderConstrained = senderConstrained,
            SenderConstrainedScopes = senderConstrainedScopes,
            RequiredContext = required,
            TimeWindows = windows,
            MaxTokenTtl = maxTokenTtl,
            DefaultLeaseTtl = defaultLease,
            MaxLeaseLifetime = maxLease,
            MaxConcurrentLeases = maxConcurrent ?? 100,
            MaxTasksPerMinute = maxPerMinute ?? 600,
        };
    }

    /// <summary>
    /// <c>sender_constrained</c>: <c>true</c> (every token of the agent), or a list of scope patterns
    /// (tokens carrying a matching scope) that must be sender-constrained: mTLS or DPoP.
    /// </summary>
    private static (bool All, HashSet<string> Scopes) ReadSenderConstrained(Dictionary<string, YamlNode> map, string field, YamlFields fields)
    {
        if (!map.TryGetValue("sender_constrained", out var node))
        {
            return (false, []);
        }

        if (node is YamlScalarNode scalar)
        {
            if (scalar.Value is "true" or "false")
            {
                return (scalar.Value == "true", []);
            }

            fields.Error(node, field + ".sender_constrained", "true, false, or a list of scope patterns.");
            return (false, []);
        }

        return (false, Patterns(map, "sender_constrained", field, fields).Select(p => p.Text).ToHashSet(StringComparer.Ordinal));
    }

    private static (Dictionary<string, IReadOnlySet<string>> Required, List<TimeWindow> Windows) ReadConditions(
        YamlNode node, string field, YamlFields fields, IReadOnlyDictionary<string, IReadOnlySet<string>> vocabulary)
    {
        var windows = new List<TimeWindow>();
        if (fields.Mapping(node, field, "context", "time_windows") is not { } map)
        {
            return ([], windows);
        }

        var required = map.TryGetValue("context", out var contextNode) ? fields.Labels(contextNode, field + ".context") : [];
        if (contextNode is not null)
        {
            CheckVocabulary(required, contextNode, field + ".context", vocabulary, fields);
        }

        foreach (var (item, itemField, window) in map.TryGetValue("time_windows", out var windowsNode) ? Items(windowsNode, field + ".time_windows", fields, "days", "from", "to") : [])
        {
            var days = new HashSet<DayOfWeek>();
            foreach (var (day, dayNode) in fields.StringList(window, "days", itemField))
            {
                if (Days.TryGetValue(day, out var parsed))
                {
                    days.Add(parsed);
                }
                else
                {
                    fields.Error(dayNode, itemField + ".days", $"'{day}' is not one of mon, tue, wed, thu, fri, sat, sun.");
                }
            }

            var from = TimeOfDay(fields.String(window, "from", itemField, item, required: true), window.GetValueOrDefault("from"), itemField + ".from", fields);
            var to = TimeOfDay(fields.String(window, "to", itemField, item, required: true), window.GetValueOrDefault("to"), itemField + ".to", fields);
            if (from is { } f && to is { } t)
            {
                if (f >= t)
                {
                    fields.Error(item, itemField, "from must be before to (UTC, same day).");
                }

                windows.Add(new TimeWindow(days.Count > 0 ? days : Days.Values.ToHashSet(), f, t));
            }
        }

        return (required, windows);
    }

    private static TimeSpan? TimeOfDay(string? text, YamlNode? node, string field, YamlFields fields)
    {
        if (text is null)
        {
            return null;
        }

        if (TimeSpan.TryParseExact(text, "hh\\:mm", CultureInfo.InvariantCulture, out var value) || text == "24:00")
        {
            return text == "24:00" ? TimeSpan.FromHours(24) : value;
        }

        fields.Error(node!, field, $"'{text}' is not a time of day HH:MM (UTC).");
        return null;
    }
}
