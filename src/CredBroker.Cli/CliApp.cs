using System.CommandLine;
using CredBroker.Cli.Commands;
using CredBroker.Client;

namespace CredBroker.Cli;

/// <summary>
/// The command table. Each group is one factory (src/CredBroker.Cli/Commands); a new group is one line here.
/// </summary>
internal sealed class CliApp(TextWriter stdout, TextWriter stderr)
{
    public Connection Connection { get; } = new();

    private static readonly Func<CliApp, Command>[] Groups =
    [
        LeaseCommands.Leases,
        LeaseCommands.Tasks,
        AgentCommands.Agents,
        AuditCommands.Audit,
        StatusCommand.Status,
        ApprovalCommands.Approvals,
        PolicyCommands.Policy,
        KeyCommands.Keys,
    ];

    public RootCommand Build()
    {
        var root = new RootCommand("credbroker: operate a CredBroker (leases, agents, approvals, policy, keys, audit) over its operator listener.");
        foreach (var option in Connection.All)
        {
            root.Options.Add(option);
        }

        foreach (var group in Groups)
        {
            root.Subcommands.Add(group(this));
        }

        return root;
    }

    public async Task<int> InvokeAsync(string[] args, CancellationToken cancellationToken)
    {
        var parse = Build().Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await stderr.WriteLineAsync("credbroker: " + error.Message);
            }

            await stderr.WriteLineAsync("Run 'credbroker --help' for usage.");
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, cancellationToken);
    }

    /// <summary>The output for a command that needs no broker (e.g. <c>policy validate</c>).</summary>
    public Output OutputFor(ParseResult parse) => new(stdout, stderr, parse.GetValue(Connection.Json));

    public Task<int> RunAsync(ParseResult parse, Func<CredBrokerOperatorClient, Output, Task<int>> action) => RunAsync(parse, null, action);

    /// <summary>Runs one command: builds the client, maps every failure to an exit code and a one-line message on stderr.</summary>
    public async Task<int> RunAsync(ParseResult parse, TimeSpan? defaultTimeout, Func<CredBrokerOperatorClient, Output, Task<int>> action)
    {
        var output = new Output(stdout, stderr, parse.GetValue(Connection.Json));
        Uri server;
        try
        {
            server = Connection.Address(parse);
            using var client = Connection.Client(parse, defaultTimeout is { } t ? Connection.Timeout(parse, t) : null);
            return await action(client, output);
        }
        catch (UsageException e)
        {
            await stderr.WriteLineAsync("credbroker: " + e.Message);
            return ExitCodes.Usage;
        }
        catch (MissingCredentialException e)
        {
            await stderr.WriteLineAsync("credbroker: " + e.Message);
            return ExitCodes.Unauthenticated;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var (code, message) = ExitCodes.For(e, new Uri(parse.GetValue(Connection.Server)!, UriKind.RelativeOrAbsolute));
            await stderr.WriteLineAsync("credbroker: " + message);
            return code;
        }
    }
}
