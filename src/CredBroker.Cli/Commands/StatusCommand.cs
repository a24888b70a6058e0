using System.CommandLine;
using System.Globalization;
using CredBroker.Contracts.V1;
using Grpc.Core;
using Grpc.Health.V1;

namespace CredBroker.Cli.Commands;

/// <summary><c>status</c>: is the operator listener serving, does it accept this credential, and what it holds.</summary>
internal static class StatusCommand
{
    public static Command Status(CliApp app)
    {
        var status = new Command("status", "Broker health, credential check, active leases and the newest audit record.");
        status.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var address = app.Connection.Address(parse);
            // The standard health service on the same listener and channel (same TLS trust).
            var health = await new Health.HealthClient(client.Channel).CheckAsync(
                new HealthCheckRequest { Service = "credbroker.v1.Operator" },
                new CallOptions(deadline: DateTime.UtcNow + app.Connection.Timeout(parse, TimeSpan.FromSeconds(10)), cancellationToken: ct));

            var active = await client.ListLeasesAsync(new ListLeasesRequest { State = "active", PageSize = 500 }, ct);
            AuditRecord? newest = null;
            await foreach (var record in client.QueryAuditAsync(new QueryAuditRequest { Tail = 1, Limit = 1 }, ct))
            {
                newest = record;
            }

            var activeText = active.Leases.Count.ToString(CultureInfo.InvariantCulture) + (active.NextPageToken.Length > 0 || active.UnreachableShards.Count > 0 ? "+" : "");
            output.Incomplete(active.UnreachableShards, "active leases");
            if (output.Json)
            {
                output.Line(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["server"] = address.ToString(),
                    ["health"] = health.Status.ToString(),
                    ["authenticated"] = true,
                    ["active_leases"] = activeText,
                    ["audit_last_sequence"] = newest?.Sequence ?? 0,
                    ["audit_last_time"] = newest?.Event.Time?.ToDateTimeOffset(),
                }));
            }
            else
            {
                output.Fields([
                    ("server", address.ToString()), ("health", health.Status.ToString()), ("credential", "accepted (operator)"),
                    ("active leases", activeText),
                    ("newest audit record", newest is null ? "none" : $"#{newest.Sequence} {newest.Event.Type} at {Output.Time(newest.Event.Time)}"),
                ]);
            }

            return health.Status == HealthCheckResponse.Types.ServingStatus.Serving ? ExitCodes.Ok : ExitCodes.Unavailable;
        }));
        return status;
    }
}
