using System.Security.Cryptography;
using System.Text;
using CredBroker.Core.Agents;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace CredBroker.Core.Policy.File;

/// <summary>
/// Loads the policy file (YAML; schema in docs/policy.schema.json): agents plus global rules.
/// Every error names the file, line, column and field, unknown fields are errors, and a file with
/// any error is rejected whole (the broker keeps its last good policy).
/// </summary>
public static partial class PolicyFile
{
    public const int MaxFileBytes = 4 * 1024 * 1024;

    /// <summary>Mappings and sequences nest at most this deep (a real policy needs about 6); deeper input is refused before any tree is built.</summary>
    public const int MaxNestingDepth = 32;

    /// <summary>YAML nodes (scalars, mappings, sequences, aliases) per document at most.</summary>
    public const int MaxNodes = 1_000_000;

    private static readonly string[] TopLevel = ["version", "settings", "context_labels", "agents", "toxic_combinations", "context_rules", "verified_context"];

    public static PolicyDocument Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw Single(path, "file", "policy file not found.");
        }

        if (info.Length > MaxFileBytes)
        {
            throw Single(path, "file", $"policy file is {info.Length} bytes, over the {MaxFileBytes}-byte limit.");
        }

        string yaml;
        try
        {
            yaml = System.IO.File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
        {
            throw Single(path, "file", $"policy file cannot be read: {e.Message}");
        }

        return Parse(yaml, path);
    }

    /// <summary>
    /// Parses and validates <paramref name="yaml"/>. Any input, however malformed, deep or large, ends in
    /// a document or a <see cref="PolicyFileException"/> (a <see cref="PolicyLimitException"/> when a size
    /// or depth limit is exceeded); never another exception.
    /// </summary>
    public static PolicyDocument Parse(string yaml, string source)
    {
        if (yaml.Length > MaxFileBytes)
        {
            throw new PolicyLimitException(new PolicyError(source, 0, 0, "file", $"policy is {yaml.Length} characters, over the {MaxFileBytes}-character limit."));
        }

        var stream = new YamlStream();
        try
        {
            CheckShape(yaml, source);
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new PolicyFileException([new PolicyError(source, (int)e.Start.Line, (int)e.Start.Column, "yaml", Innermost(e).Message)], e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet reports some malformed input this way instead of as a YamlException.
            throw new PolicyFileException([new PolicyError(source, 0, 0, "yaml", $"not valid YAML ({e.Message})")], e);
        }

        if (stream.Documents.Count != 1)
        {
            throw Single(source, "file", "expected exactly one YAML document with a top-level 'agents:' list.");
        }

        var fields = new YamlFields(source);
        var root = stream.Documents[0].RootNode;
        var document = Read(root, fields, source, yaml);
        return fields.Errors.Count > 0 || document is null ? throw new PolicyFileException(fields.Errors) : document;
    }

    private static PolicyDocument? Read(YamlNode root, YamlFields fields, string source, string yaml)
    {
        if (fields.Mapping(root, string.Empty, TopLevel) is not { } top)
        {
            return null;
        }

        if (top.TryGetValue("version", out var version) && (version as YamlScalarNode)?.Value != "1")
        {
            fields.Error(version, "version", "only version 1 exists.");
        }

        var labels = top.TryGetValue("context_labels", out var labelNode) ? fields.Labels(labelNode, "context_labels") : [];
        var verifiedContext = top.TryGetValue("verified_context", out var verifiedNode) ? ReadVerifiedContext(verifiedNode, fields, labels) : [];
        var settings = top.TryGetValue("settings", out var settingsNode) ? ReadSettings(settingsNode, fields) : new PolicySettings();
        var agents = new List<AgentDefinition>();
        if (!top.TryGetValue("agents", out var agentsNode) || agentsNode is not YamlSequenceNode { Children.Count: > 0 } agentList)
        {
            fields.Error(top.GetValueOrDefault("agents") ?? root, "agents", "required: a list of at least one agent.");
        }
        else
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var identities = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < agentList.Children.Count; i++)
            {
                if (ReadAgent(agentList.Children[i], $"agents[{i}]", fields, labels) is not { } agent)
                {
                    continue;
                }

                if (!seen.Add(agent.Id))
                {
                    fields.Error(agentList.Children[i], $"agents[{i}].id", $"'{agent.Id}' is defined more than once.");
                    continue;
                }

                foreach (var identity in agent.Identities)
                {
                    if (IdentityEntry.SyntaxProblem(identity) is { } problem)
                    {
                        fields.Error(agentList.Children[i], $"agents[{i}].identities", problem);
                    }
                    else if (!identities.TryAdd(identity, agent.Id))
                    {
                        fields.Error(agentList.Children[i], $"agents[{i}].identities", $"'{identity}' already maps to agent '{identities[identity]}'; a workload acts as one agent only.");
                    }
                }

                agents.Add(agent);
            }
        }

        var toxic = top.TryGetValue("toxic_combinations", out var toxicNode) ? ReadToxic(toxicNode, fields) : [];
        var rules = top.TryGetValue("context_rules", out var rulesNode) ? ReadContextRules(rulesNode, fields, labels) : [];
        foreach (var agent in agents.Where(a => settings.ApprovalTimeout >= a.MaxLeaseLifetime && a.ApprovalScopes.Count > 0))
        {
            fields.Error(settingsNode, root.Start, "settings.approval_timeout",
                $"must be shorter than agent '{agent.Id}''s max_lease_lifetime ({agent.MaxLeaseLifetime}): the wait for approval counts toward the lease's lifetime.");
        }

        return new PolicyDocument
        {
            Agents = new AgentCatalog(agents),
            ContextLabels = labels,
            VerifiedContext = verifiedContext,
            ToxicCombinations = toxic,
            ContextRules = rules,
            Settings = settings,
            Source = source,
            Version = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)))[..12],
        };
    }

    private static PolicySettings ReadSettings(YamlNode node, YamlFields fields)
    {
        if (fields.Mapping(node, "settings", "approval_timeout", "denial_burst") is not { } map)
        {
            return new PolicySettings();
        }

        DenialBurstSettings? burst = null;
        if (map.TryGetValue("denial_burst", out var burstNode) && fields.Mapping(burstNode, "settings.denial_burst", "threshold", "window", "action") is { } b)
        {
            var threshold = fields.Int(b, "threshold", "settings.denial_burst", 1, 10_000);
            var window = fields.Duration(b, "window", "settings.denial_burst");
            var action = fields.String(b, "action", "settings.denial_burst", burstNode) ?? "alert";
            if (threshold is null || window is null)
            {
                fields.Error(burstNode, "settings.denial_burst", "threshold and window are required.");
            }

            if (action is not ("alert" or "quarantine"))
            {
                fields.Error(b.GetValueOrDefault("action") ?? burstNode, "settings.denial_burst.action", "alert or quarantine.");
            }

            burst = new DenialBurstSettings(threshold ?? 1, window ?? TimeSpan.FromMinutes(1), action == "quarantine" ? DenialBurstAction.Quarantine : DenialBurstAction.Alert);
        }

        return new PolicySettings
        {
            ApprovalTimeout = fields.Duration(map, "approval_timeout", "settings") ?? TimeSpan.FromMinutes(15),
            DenialBurst = burst,
        };
    }

    private static List<ToxicCombination> ReadToxic(YamlNode node, YamlFields fields)
    {
        var list = new List<ToxicCombination>();
        foreach (var (item, field, map) in Items(node, "toxic_combinations", fields, "id", "description", "scopes", "within"))
        {
            var id = RuleId(map, field, item, fields);
            var scopes = Patterns(map, "scopes", field, fields);
            if (scopes.Count < 2)
            {
                fields.Error(map.GetValueOrDefault("scopes") ?? item, field + ".scopes", "a combination lists at least two scope patterns.");
            }

            var within = fields.String(map, "within", field, item) ?? "agent";
            if (within is not ("task" or "agent"))
            {
                fields.Error(map.GetValueOrDefault("within") ?? item, field + ".within", "task (one lease) or agent (one lease and the agent's other active leases).");
            }

            if (id is not null)
            {
                list.Add(new ToxicCombination(id, scopes, within == "task" ? ToxicScope.Task : ToxicScope.Agent, fields.String(map, "description", field, item) ?? string.Empty));
            }
        }

        Unique(list.Select(t => t.Id), node, "toxic_combinations", fields);
        return list;
    }

    /// <summary><c>verified_context: { label: { claim: name } }</c>: labels whose value comes from a claim of the workload credential.</summary>
    private static Dictionary<string, string> ReadVerifiedContext(YamlNode node, YamlFields fields, IReadOnlyDictionary<string, IReadOnlySet<string>> vocabulary)
    {
        var verified = new Dictionary<string, string>(StringComparer.Ordinal);
        if (fields.Mapping(node, "verified_context") is not { } map)
        {
            return verified;
        }

        foreach (var (key, value) in map)
        {
            var field = "verified_context." + key;
            if (!vocabulary.ContainsKey(key))
            {
                fields.Error(value, field, "not a label declared in context_labels.");
                continue;
            }

            if (fields.Mapping(value, field, "claim") is not { } source)
            {
                continue;
            }

            var claim = fields.String(source, "claim", field, value, required: true, why: "required: the workload credential claim the label's value comes from.");
            if (claim is null)
            {
                continue;
            }

            if (claim.Length > 64 || claim.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
            {
                fields.Error(source["claim"], field + ".claim", "a claim name of up to 64 characters without spaces or control characters.");
                continue;
            }

            verified[key] = claim;
        }

        return verified;
    }

    private static List<ContextRule> ReadContextRules(YamlNode node, YamlFields fields, IReadOnlyDictionary<string, IReadOnlySet<string>> vocabulary)
    {
        var list = new List<ContextRule>();
        foreach (var (item, field, map) in Items(node, "context_rules", fields, "id", "description", "when", "scopes", "agents", "action", "ttl"))
        {
            var id = RuleId(map, field, item, fields);
            var when = map.TryGetValue("when", out var whenNode) ? fields.Labels(whenNode, field + ".when") : [];
            if (when.Count == 0)
            {
                fields.Error(whenNode ?? item, field + ".when", "required: the context labels the rule applies to.");
            }

            CheckVocabulary(when, whenNode ?? item, field + ".when", vocabulary, fields);
            var action = fields.String(map, "action", field, item, required: true);
            var parsed = action switch
            {
                "deny" => ContextAction.Deny,
                "require_approval" => ContextAction.RequireApproval,
                "drop_scopes" => ContextAction.DropScopes,
                "cap_ttl" => ContextAction.CapTtl,
                _ => (ContextAction?)null,
            };
            if (action is not null && parsed is null)
            {
                fields.Error(map["action"], field + ".action", "one of deny, require_approval, drop_scopes, cap_ttl.");
            }

            var ttl = fields.Duration(map, "ttl", field);
            if (parsed == ContextAction.CapTtl && ttl is null)
            {
                fields.Error(item, field + ".ttl", "required for action cap_ttl.");
            }

            var agents = fields.StringList(map, "agents", field).Select(a => a.Value).ToHashSet(StringComparer.Ordinal);
            if (id is not null && parsed is { } a)
            {
                list.Add(new ContextRule(id, when, new ScopePatternSet(Patterns(map, "scopes", field, fields)), agents, a, ttl, fields.String(map, "description", field, item) ?? string.Empty));
            }
        }

        Unique(list.Select(r => r.Id), node, "context_rules", fields);
        return list;
    }

    private static IEnumerable<(YamlNode Item, string Field, Dictionary<string, YamlNode> Map)> Items(YamlNode node, string field, YamlFields fields, params string[] known)
    {
        if (node is not YamlSequenceNode sequence)
        {
            fields.Error(node, field, "expected a list.");
            yield break;
        }

        for (var i = 0; i < sequence.Children.Count; i++)
        {
            if (fields.Mapping(sequence.Children[i], $"{field}[{i}]", known) is { } map)
            {
                yield return (sequence.Children[i], $"{field}[{i}]", map);
            }
        }
    }

    private static string? RuleId(Dictionary<string, YamlNode> map, string field, YamlNode item, YamlFields fields)
    {
        var id = fields.String(map, "id", field, item, required: true);
        if (id is not null && !Broker.Syntax.AgentId().IsMatch(id))
        {
            fields.Error(map["id"], field + ".id", "lower-case letters, digits, '.', '_', '-' (max 64).");
            return null;
        }

        return id;
    }

    private static List<ScopePattern> Patterns(Dictionary<string, YamlNode> map, string key, string field, YamlFields fields)
    {
        var patterns = new List<ScopePattern>();
        foreach (var (value, node) in fields.StringList(map, key, field))
        {
            if (ScopePattern.TryParse(value, out var pattern))
            {
                patterns.Add(pattern);
            }
            else
            {
                fields.Error(node, $"{field}.{key}", $"'{value}' is not a scope pattern (segments of letters, digits and ._- separated by ':' or '/'; a whole segment may be '*').");
            }
        }

        return patterns;
    }

    private static void CheckVocabulary(IReadOnlyDictionary<string, IReadOnlySet<string>> labels, YamlNode node, string field, IReadOnlyDictionary<string, IReadOnlySet<string>> vocabulary, YamlFields fields)
    {
        foreach (var (key, values) in labels)
        {
            if (!vocabulary.TryGetValue(key, out var known))
            {
                fields.Error(node, $"{field}.{key}", "not a label declared in context_labels.");
            }
            else if (values.FirstOrDefault(v => !known.Contains(v)) is { } unknown)
            {
                fields.Error(node, $"{field}.{key}", $"'{unknown}' is not one of the values declared in context_labels.{key}.");
            }
        }
    }

    private static void Unique(IEnumerable<string> ids, YamlNode node, string field, YamlFields fields)
    {
        foreach (var id in ids.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key))
        {
            fields.Error(node, field, $"id '{id}' is used more than once.");
        }
    }

    /// <summary>
    /// Streams the YAML events once (no recursion) and refuses input nested deeper than
    /// <see cref="MaxNestingDepth"/> or with more than <see cref="MaxNodes"/> nodes, before the
    /// recursive tree builder sees it (deep nesting would otherwise overflow the stack).
    /// </summary>
    private static void CheckShape(string yaml, string source)
    {
        var parser = new Parser(new StringReader(yaml));
        var depth = 0;
        var nodes = 0;
        while (parser.MoveNext())
        {
            var current = parser.Current!;
            switch (current)
            {
                case MappingStart or SequenceStart:
                    if (++depth > MaxNestingDepth)
                    {
                        throw new PolicyLimitException(new PolicyError(source, (int)current.Start.Line, (int)current.Start.Column, "yaml",
                            $"nesting deeper than {MaxNestingDepth} levels (the limit for mappings and sequences); a policy needs only a few."));
                    }

                    break;
                case MappingEnd or SequenceEnd:
                    depth--;
                    continue;
                case DocumentStart or DocumentEnd or StreamStart or StreamEnd or Comment:
                    continue;
            }

            if (++nodes > MaxNodes)
            {
                throw new PolicyLimitException(new PolicyError(source, (int)current.Start.Line, (int)current.Start.Column, "yaml",
                    $"more than {MaxNodes} YAML nodes (the limit per policy)."));
            }
        }
    }

    private static PolicyFileException Single(string source, string field, string message) => new([new PolicyError(source, 0, 0, field, message)]);

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;
}
