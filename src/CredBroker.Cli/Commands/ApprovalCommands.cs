using System.CommandLine;
using CredBroker.Contracts.V1;

namespace CredBroker.Cli.Commands;

/// <summary><c>approvals list|approve|deny</c>: the human side of <c>approval_scopes</c> (ListApprovals / DecideApproval).</summary>
internal static class ApprovalCommands
{
    public static Command Approvals(CliApp app)
    {
        var agent = new Option<string?>("--agent") { Description = "Only this agent's approvals." };
        var limit = new Option<int>("--limit") { Description = "Show at most this many (default 100).", DefaultValueFactory = _ => 100 };
        var list = new Command("list", "List pending approval requests (and recently decided ones the broker still holds).") { agent, limit };
        list.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var max = parse.GetValue(limit);
            if (max is < 1 or > 100_000)
            {
                throw new UsageException("--limit must be between 1 and 100000.");
            }

            var approvals = new List<Approval>();
            var unreachable = new SortedSet<int>();
            var request = new ListApprovalsRequest { AgentId = parse.GetValue(agent) ?? "", PageSize = Math.Min(max, 500) };
            do
            {
                var page = await client.ListApprovalsAsync(request, ct);
                approvals.AddRange(page.Approvals.Take(max - approvals.Count));
                unreachable.UnionWith(page.UnreachableShards);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && approvals.Count < max);

            if (output.Json)
            {
                output.Messages(approvals);
            }
            else
            {
                output.Table(["APPROVAL", "AGENT", "TASK", "STATE", "NEEDS", "REQUESTED", "EXPIRES", "REASON"],
                    approvals.Select(a => (IReadOnlyList<string>)[
                        a.ApprovalId, a.AgentId, a.TaskId, a.State, string.Join(' ', a.ApprovalScopes), string.Join(' ', a.RequestedScopes), Output.Time(a.ExpiresAt), a.Reason]));
            }

            output.Incomplete(unreachable, "approval requests");

            return ExitCodes.Ok;
        }));

        var id = new Argument<string>("approval-id") { Description = "The approval id (the pending lease's id, from 'approvals list')." };
        var scopes = Scopes("Grant only these of the requested scopes (repeatable or comma-separated); default: all requested.");
        var note = new Option<string?>("--reason", "-r") { Description = "An optional note, recorded with your identity in the audit trail." };
        var approve = new Command("approve", "Approve a pending request: the agent's task gets its lease (optionally narrowed with --scopes).") { id, scopes, note };
        approve.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var request = new DecideApprovalRequest
            {
                ApprovalId = parse.GetValue(id)!, Verdict = DecideApprovalRequest.Types.Verdict.Approve, Reason = parse.GetValue(note) ?? "",
            };
            request.Scopes.AddRange(Split(parse.GetValue(scopes)));
            Decided(output, (await client.DecideApprovalAsync(request, ct)).Approval);
            return ExitCodes.Ok;
        }));

        var reason = new Option<string>("--reason", "-r") { Description = "Why (required; shown to the agent and recorded in the audit trail).", Required = true };
        var deny = new Command("deny", "Deny a pending request: the agent's task gets no lease.") { id, reason };
        deny.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var request = new DecideApprovalRequest
            {
                ApprovalId = parse.GetValue(id)!, Verdict = DecideApprovalRequest.Types.Verdict.Deny, Reason = parse.GetValue(reason)!,
            };
            Decided(output, (await client.DecideApprovalAsync(request, ct)).Approval);
            return ExitCodes.Ok;
        }));

        return new Command("approvals", "Review, approve and deny requests that policy sent to a human.") { list, approve, deny };
    }

    /// <summary>A repeatable scope option; each value may also hold several comma- or space-separated scopes.</summary>
    public static Option<string[]> Scopes(string description) => new("--scopes")
    {
        Description = description,
        AllowMultipleArgumentsPerToken = true,
    };

    public static IEnumerable<string> Split(string[]? values) =>
        (values ?? []).SelectMany(v => v.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static void Decided(Output output, Approval approval)
    {
        if (output.Json)
        {
            output.Message(approval);
            return;
        }

        output.Line(approval.State == "approved"
            ? $"approved {approval.ApprovalId} (agent {approval.AgentId}, task {approval.TaskId}): granted {string.Join(' ', approval.GrantedScopes)}"
            : $"{approval.State} {approval.ApprovalId} (agent {approval.AgentId}, task {approval.TaskId})" + (approval.Note.Length > 0 ? ": " + approval.Note : ""));
    }
}
