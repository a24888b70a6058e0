using System.CommandLine;

namespace CredBroker.Cli.Commands;

/// <summary><c>agents quarantine|release</c>.</summary>
internal static class AgentCommands
{
    public static Command Agents(CliApp app)
    {
        var agent = new Argument<string>("agent-id") { Description = "The agent id from the agent definitions." };
        var reason = LeaseCommands.Reason();
        var quarantine = new Command("quarantine", "Revoke every open lease of the agent, invalidate its tokens and block new ones until released.") { agent, reason };
        quarantine.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var response = await client.QuarantineAgentAsync(parse.GetValue(agent)!, parse.GetValue(reason)!, ct);
            if (output.Json)
            {
                output.Message(response);
            }
            else
            {
                output.Line($"agent {parse.GetValue(agent)} quarantined since {Output.Time(response.QuarantinedSince)}; {response.LeasesRevoked} lease(s) revoked by this call");
            }

            return ExitCodes.Ok;
        }));

        var release = new Command("release", "Let a quarantined agent begin tasks again (its old tokens stay invalid).") { agent };
        release.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var response = await client.ReleaseAgentAsync(parse.GetValue(agent)!, ct);
            if (output.Json)
            {
                output.Message(response);
            }
            else
            {
                output.Line(response.Released ? $"agent {parse.GetValue(agent)} released" : $"agent {parse.GetValue(agent)} was not quarantined (nothing changed)");
            }

            return ExitCodes.Ok;
        }));

        return new Command("agents", "Quarantine and release agents.") { quarantine, release };
    }
}
