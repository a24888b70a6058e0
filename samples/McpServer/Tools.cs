using System.Collections.Concurrent;
using System.ComponentModel;
using CredBroker.Validation.Mcp;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace McpServerSample;

/// <summary>The sample's in-memory ticket store.</summary>
public sealed class TicketDesk
{
    private readonly ConcurrentDictionary<string, string> _tickets = new(StringComparer.Ordinal)
    {
        ["T-1"] = "open: printer on floor 3 is jammed",
        ["T-2"] = "open: VPN drops every hour",
    };

    public IReadOnlyDictionary<string, string> All => _tickets;

    /// <summary>Closes <paramref name="id"/>; false when there is no such ticket. Closing a closed ticket changes nothing.</summary>
    public bool Close(string id)
    {
        while (_tickets.TryGetValue(id, out var state))
        {
            if (!state.StartsWith("open", StringComparison.Ordinal) || _tickets.TryUpdate(id, "closed" + state["open".Length..], state))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Ticket tools: reading needs <c>demo:read</c>, closing needs <c>demo:write</c>.</summary>
[McpServerToolType]
public sealed class TicketTools
{
    [McpServerTool(Name = "list_tickets", ReadOnly = true), Description("Lists the support tickets and their state.")]
    [RequireScope("demo:read")]
    public static string ListTickets(TicketDesk desk) =>
        string.Join("\n", desk.All.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}: {t.Value}"));

    [McpServerTool(Name = "close_ticket", Destructive = true, Idempotent = true), Description("Closes one support ticket.")]
    [RequireScope("demo:write")]
    public static string CloseTicket(TicketDesk desk, [Description("The ticket id, e.g. T-1.")] string id) =>
        desk.Close(id) ? $"{id} closed" : throw new McpException($"there is no ticket {id}");
}

/// <summary>
/// Tools whose combination is dangerous: customer records plus an outbound POST is an exfiltration path. The
/// policy (samples/policy/mcp.yaml) grants each scope but denies both in one task (a toxic combination).
/// </summary>
[McpServerToolType]
public sealed class CustomerTools
{
    [McpServerTool(Name = "read_customer", ReadOnly = true), Description("Reads one customer record.")]
    [RequireScope("customers:read")]
    public static string ReadCustomer([Description("The customer id, e.g. C-7.")] string id) => $"{id}: Ada Lovelace, ada@example.com";

    [McpServerTool(Name = "post_external", OpenWorld = true), Description("Posts a message to an external webhook URL (simulated).")]
    [RequireScope("http:post:external")]
    public static string PostExternal([Description("The target URL.")] string url, [Description("The body.")] string body) =>
        $"would POST {body.Length} characters to {url}";
}
