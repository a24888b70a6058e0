using System.Text;
using System.Text.Json;

namespace CredBroker.Core.Audit;

/// <summary>
/// The canonical JSON of an event: fixed member order, no whitespace, scopes and details sorted,
/// time in Unix milliseconds. The chain hashes exactly these bytes, so they must never depend on
/// the runtime's serializer settings.
/// </summary>
public static class AuditEventJson
{
    public static string Write(AuditEvent e)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("type", e.Type.ToWire());
            json.WriteNumber("time", e.Time.ToUnixTimeMilliseconds());
            json.WriteString("agent", e.AgentId);
            json.WriteString("owner", e.Owner);
            json.WriteString("task", e.TaskId);
            json.WriteString("lease", e.LeaseId);
            json.WriteString("audience", e.Audience);
            Strings(json, "scopes_requested", e.ScopesRequested.Order(StringComparer.Ordinal));
            Strings(json, "scopes_granted", e.ScopesGranted.Order(StringComparer.Ordinal));
            Strings(json, "rules", e.RuleIds);
            json.WriteString("caller", e.Caller);
            json.WriteString("operator", e.Operator);
            json.WriteString("reason", e.Reason);
            json.WriteStartObject("details");
            foreach (var (key, value) in e.Details.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                json.WriteString(key, value);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static AuditEvent? TryParse(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (!AuditEventTypes.TryParse(root.GetProperty("type").GetString() ?? "", out var type))
            {
                return null;
            }

            return new AuditEvent
            {
                Type = type,
                Time = DateTimeOffset.FromUnixTimeMilliseconds(root.GetProperty("time").GetInt64()),
                AgentId = root.GetProperty("agent").GetString() ?? "",
                Owner = root.GetProperty("owner").GetString() ?? "",
                TaskId = root.GetProperty("task").GetString() ?? "",
                LeaseId = root.GetProperty("lease").GetString() ?? "",
                Audience = root.GetProperty("audience").GetString() ?? "",
                ScopesRequested = ReadStrings(root.GetProperty("scopes_requested")),
                ScopesGranted = ReadStrings(root.GetProperty("scopes_granted")),
                RuleIds = ReadStrings(root.GetProperty("rules")),
                Caller = root.GetProperty("caller").GetString() ?? "",
                Operator = root.GetProperty("operator").GetString() ?? "",
                Reason = root.GetProperty("reason").GetString() ?? "",
                Details = root.GetProperty("details").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal),
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    private static void Strings(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteStringValue(value);
        }

        json.WriteEndArray();
    }

    private static List<string> ReadStrings(JsonElement array) => array.EnumerateArray().Select(v => v.GetString() ?? "").ToList();
}
