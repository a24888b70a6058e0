using System.CommandLine;
using CredBroker.Contracts.V1;

namespace CredBroker.Cli.Commands;

/// <summary><c>leases list|show|revoke</c> and <c>tasks revoke</c>.</summary>
internal static class LeaseCommands
{
    public static Command Leases(CliApp app)
    {
        var agent = new Option<string?>("--agent") { Description = "Only this agent's leases." };
        var owner = new Option<string?>("--owner") { Description = "Only leases of agents with this owner." };
        var state = new Option<string?>("--state") { Description = "pending_approval, active, completed, expired or revoked." };
        var limit = new Option<int>("--limit") { Description = "Show at most this many (default 100).", DefaultValueFactory = _ => 100 };
        var list = new Command("list", "List leases, newest first within each shard.") { agent, owner, state, limit };
        list.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var max = parse.GetValue(limit);
            if (max is < 1 or > 100_000)
            {
                throw new UsageException("--limit must be between 1 and 100000.");
            }

            var leases = new List<Lease>();
            var unreachable = new SortedSet<int>();
            var request = new ListLeasesRequest
            {
                AgentId = parse.GetValue(agent) ?? "", Owner = parse.GetValue(owner) ?? "", State = parse.GetValue(state) ?? "", PageSize = Math.Min(max, 500),
            };
            do
            {
                var page = await client.ListLeasesAsync(request, ct);
                leases.AddRange(page.Leases.Take(max - leases.Count));
                unreachable.UnionWith(page.UnreachableShards);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && leases.Count < max);

            if (output.Json)
            {
                output.Messages(leases);
            }
            else
            {
                output.Table(["LEASE", "AGENT", "TASK", "STATE", "SCOPES", "DEADLINE"],
                    leases.Select(l => (IReadOnlyList<string>)[l.LeaseId, l.AgentId, l.TaskId, l.State, string.Join(' ', l.Scopes), Output.Time(l.Deadline)]));
            }

            output.Incomplete(unreachable, "leases");

            return ExitCodes.Ok;
        }));

        var id = new Argument<string>("lease-id") { Description = "The lease id (l<shard>_…)." };
        var show = new Command("show", "Show one lease.") { id };
        show.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var lease = await client.GetLeaseAsync(parse.GetValue(id)!, ct);
            Show(output, lease);
            return ExitCodes.Ok;
        }));

        var reason = Reason();
        var revoke = new Command("revoke", "Revoke an open lease now: its tokens stop working. Idempotent.") { id, reason };
        revoke.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            Revoked(output, await client.RevokeLeaseAsync(parse.GetValue(id)!, parse.GetValue(reason)!, ct));
            return ExitCodes.Ok;
        }));

        return new Command("leases", "Inspect and revoke leases.") { list, show, revoke };
    }

    public static Command Tasks(CliApp app)
    {
        var agent = new Argument<string>("agent-id") { Description = "The agent that runs the task." };
        var task = new Argument<string>("task-id") { Description = "The runtime's task id." };
        var reason = Reason();
        var revoke = new Command("revoke", "Revoke the lease of an agent's task. Idempotent.") { agent, task, reason };
        revoke.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            Revoked(output, await client.RevokeTaskAsync(parse.GetValue(agent)!, parse.GetValue(task)!, parse.GetValue(reason)!, ct));
            return ExitCodes.Ok;
        }));
        return new Command("tasks", "Act on tasks by agent and task id.") { revoke };
    }

    public static Option<string> Reason() => new("--reason", "-r") { Description = "Why (recorded in the revocation log and audit trail).", Required = true };

    private static void Revoked(Output output, RevokeLeaseResponse response)
    {
        if (output.Json)
        {
            output.Message(response);
            return;
        }

        output.Line(response.Changed
            ? $"revoked {response.Lease.LeaseId} (agent {response.Lease.AgentId}, task {response.Lease.TaskId})"
            : $"{response.Lease.LeaseId} had already ended: {response.Lease.State} (nothing changed)");
    }

    private static void Show(Output output, Lease lease)
    {
        if (output.Json)
        {
            output.Message(lease);
            return;
        }

        output.Fields([
            ("lease", lease.LeaseId), ("agent", lease.AgentId), ("task", lease.TaskId), ("owner", lease.Owner), ("purpose", lease.Purpose),
            ("audience", lease.Audience), ("scopes", string.Join(' ', lease.Scopes)), ("state", lease.State), ("created", Output.Time(lease.CreatedAt)),
            ("deadline", Output.Time(lease.Deadline)), ("max deadline", Output.Time(lease.MaxDeadline)), ("ended", Output.Time(lease.EndedAt)),
            ("generation", lease.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ]);
    }
}
