using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;

namespace CredBroker.Cli.Commands;

/// <summary><c>audit tail|query|verify</c>.</summary>
internal static class AuditCommands
{
    public static Command Audit(CliApp app)
    {
        var filters = new Filters();
        var limit = new Option<int>("--limit") { Description = "Stop after this many records (default 1000, at most 10000).", DefaultValueFactory = _ => 1000 };
        var after = new Option<long>("--after") { Description = "Only records after this sequence number." };
        var query = new Command("query", "Audit records matching the filters, oldest first.") { limit, after };
        filters.AddTo(query);
        query.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var request = filters.Request(parse);
            request.Limit = parse.GetValue(limit);
            request.AfterSequence = parse.GetValue(after);
            await StreamAsync(client, request, output, ct);
            return ExitCodes.Ok;
        }));

        var lines = new Option<int>("--lines", "-n") { Description = "Start with the last N records of the chain (default 20).", DefaultValueFactory = _ => 20 };
        var followOption = new Option<bool>("--follow", "-f") { Description = "Keep printing new records until interrupted (Ctrl-C)." };
        var tail = new Command("tail", "The newest audit records; with -f, follow new ones.") { lines, followOption };
        filters.AddTo(tail);
        tail.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var request = filters.Request(parse);
            var count = parse.GetValue(lines);
            if (count is < 0 or > 10_000)
            {
                throw new UsageException("--lines must be between 0 and 10000.");
            }

            request.Follow = parse.GetValue(followOption);
            if (count == 0)
            {
                // Only what comes next: start after the newest record.
                await foreach (var newest in client.QueryAuditAsync(new QueryAuditRequest { Tail = 1, Limit = 1 }, ct))
                {
                    request.AfterSequence = newest.Sequence;
                }

                if (!request.Follow)
                {
                    return ExitCodes.Ok;
                }
            }

            request.Tail = count;
            request.Limit = request.Follow ? 0 : count;
            try
            {
                await StreamAsync(client, request, output, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C ends a follow: that is success.
            }

            return ExitCodes.Ok;
        }));

        var verify = new Command("verify", "Check the audit hash chain and its signed checkpoints; exit 8 when it is broken.");
        verify.SetAction((parse, ct) => app.RunAsync(parse, TimeSpan.FromMinutes(5), async (client, output) =>
        {
            var response = await WithProgressAsync(output, () => client.VerifyAuditAsync(app.Connection.Timeout(parse, TimeSpan.FromMinutes(5)), ct));
            if (output.Json)
            {
                output.Message(response);
            }
            else
            {
                output.Fields([
                    ("result", response.Intact ? "INTACT" : "BROKEN"),
                    ("records checked", response.RecordsChecked.ToString(CultureInfo.InvariantCulture)),
                    ("sequences", $"{response.FirstSequence}..{response.LastSequence}"),
                    ("checkpoints verified", response.CheckpointsVerified.ToString(CultureInfo.InvariantCulture)),
                    .. response.Intact ? Array.Empty<(string, string)>() : [("first broken sequence", response.FirstBrokenSequence.ToString(CultureInfo.InvariantCulture)), ("problem", response.Problem)],
                ]);
            }

            return response.Intact ? ExitCodes.Ok : ExitCodes.AuditBroken;
        }));

        return new Command("audit", "Read and verify the tamper-evident audit trail.") { tail, query, verify };
    }

    private static async Task StreamAsync(CredBrokerOperatorClient client, QueryAuditRequest request, Output output, CancellationToken cancellationToken)
    {
        var headerShown = false;
        await foreach (var record in client.QueryAuditAsync(request, cancellationToken))
        {
            if (output.Json)
            {
                output.Line(Output.ToJson(record));
                continue;
            }

            if (!headerShown)
            {
                output.Line(Row("SEQ", "TIME", "TYPE", "AGENT", "TASK", "LEASE", "BY", "RULES", "REASON"));
                headerShown = true;
            }

            var e = record.Event;
            output.Line(Row(record.Sequence.ToString(CultureInfo.InvariantCulture), Output.Time(e.Time), e.Type, e.AgentId, e.TaskId, e.LeaseId,
                e.Operator.Length > 0 ? e.Operator : e.Caller, string.Join(',', e.RuleIds), e.Reason));
        }

        if (!headerShown && !output.Json)
        {
            output.Error.WriteLine("no matching audit records");
        }
    }

    /// <summary>Streams print as they arrive, so columns have fixed widths instead of being sized to the whole result.</summary>
    private static string Row(params string[] cells)
    {
        int[] widths = [6, 20, 20, 16, 16, 30, 24, 24];
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            var cell = cells[i].Length == 0 ? "-" : cells[i].ReplaceLineEndings(" ");
            if (i < widths.Length)
            {
                cell = cell.Length > widths[i] - 1 ? cell[..(widths[i] - 2)] + "…" : cell;
                text.Append(cell.PadRight(widths[i]));
            }
            else
            {
                text.Append(cell);
            }
        }

        return text.ToString().TrimEnd();
    }

    /// <summary>Shows elapsed time on stderr while a long call runs, when stderr is a terminal.</summary>
    private static async Task<T> WithProgressAsync<T>(Output output, Func<Task<T>> call)
    {
        if (Console.IsErrorRedirected || output.Json)
        {
            return await call();
        }

        var started = Stopwatch.GetTimestamp();
        var task = call();
        while (await Task.WhenAny(task, Task.Delay(250)) != task)
        {
            output.Error.Write($"\rverifying the audit chain… {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
        }

        output.Error.Write("\r\u001b[K");
        return await task;
    }

    private sealed class Filters
    {
        private readonly Option<string?> _agent = new("--agent") { Description = "Only this agent." };
        private readonly Option<string?> _owner = new("--owner") { Description = "Only agents with this owner." };
        private readonly Option<string?> _task = new("--task") { Description = "Only this task id." };
        private readonly Option<string?> _lease = new("--lease") { Description = "Only this lease id." };
        private readonly Option<string[]> _types = new("--type", "-t")
        {
            Description = "Only these event types (repeatable): token.minted, token.denied, lease.revoked, agent.quarantined, …",
            AllowMultipleArgumentsPerToken = true,
        };

        private readonly Option<DateTimeOffset?> _since = new("--since") { Description = "Events at or after this time (ISO 8601, e.g. 2026-11-25T14:00:00Z)." };
        private readonly Option<DateTimeOffset?> _until = new("--until") { Description = "Events before this time." };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { _agent, _owner, _task, _lease, _types, _since, _until })
            {
                command.Options.Add(option);
            }
        }

        public QueryAuditRequest Request(ParseResult parse)
        {
            var request = new QueryAuditRequest
            {
                AgentId = parse.GetValue(_agent) ?? "", Owner = parse.GetValue(_owner) ?? "", TaskId = parse.GetValue(_task) ?? "", LeaseId = parse.GetValue(_lease) ?? "",
            };
            request.EventTypes.AddRange(parse.GetValue(_types) ?? []);
            if (parse.GetValue(_since) is { } since)
            {
                request.Since = Timestamp.FromDateTimeOffset(since);
            }

            if (parse.GetValue(_until) is { } until)
            {
                request.Until = Timestamp.FromDateTimeOffset(until);
            }

            return request;
        }
    }
}
