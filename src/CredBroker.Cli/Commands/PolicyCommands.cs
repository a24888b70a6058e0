using System.CommandLine;
using CredBroker.Contracts.V1;
using CredBroker.Core.Policy.File;
using PolicyError = CredBroker.Core.Policy.File.PolicyError;

namespace CredBroker.Cli.Commands;

/// <summary>
/// <c>policy validate|analyze|explain</c>. <c>validate</c> parses a local file with the broker's own loader (no server);
/// <c>analyze</c> and <c>explain</c> ask the broker (AnalyzePolicy / ExplainDecision).
/// </summary>
internal static class PolicyCommands
{
    private const int MaxCandidateBytes = 1024 * 1024;

    public static Command Policy(CliApp app)
    {
        var file = new Argument<FileInfo>("file") { Description = "The policy file (YAML) to check." };
        var validate = new Command("validate", "Check a policy file locally, as the broker would load it; prints file:line:column errors, exits 1 when invalid.") { file };
        validate.SetAction(parse => Validate(app.OutputFor(parse), parse.GetValue(file)!));

        var candidate = new Option<FileInfo?>("--candidate") { Description = "Analyze this policy file (sent to the broker, at most 1 MiB) instead of the policy in force." };
        var analyze = new Command("analyze", "Find toxic combinations an agent can reach, unreachable scopes, missing owners/purposes; exits 1 when the candidate is invalid.")
        {
            candidate,
        };
        analyze.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var text = parse.GetValue(candidate) is { } path ? await ReadCandidateAsync(path, ct) : "";
            var response = await client.AnalyzePolicyAsync(text, ct);
            if (output.Json)
            {
                output.Message(response);
            }
            else if (response.Findings.Count == 0)
            {
                output.Line($"no findings (policy {Short(response.Version)})");
            }
            else
            {
                output.Table(["KIND", "AGENT", "RULE", "DETAIL"], response.Findings.Select(f => (IReadOnlyList<string>)[f.Kind, f.AgentId, f.RuleId, f.Detail]));
            }

            return response.Findings.Any(f => f.Kind == "invalid") ? ExitCodes.Failure : ExitCodes.Ok;
        }));

        var agent = new Option<string>("--agent") { Description = "The agent id.", Required = true };
        var scopes = ApprovalCommands.Scopes("The scopes the agent would ask for (repeatable or comma-separated).");
        var audience = new Option<string?>("--audience") { Description = "The audience it would ask for (default: the agent's first)." };
        var context = new Option<string[]>("--context")
        {
            Description = "A context label as key=value (repeatable), e.g. --context ticket_source=email.",
            AllowMultipleArgumentsPerToken = true,
        };
        var holdings = new Option<bool>("--include-holdings") { Description = "Also consider the agent's active leases (toxic combinations across tasks), as BeginTask does." };
        var explain = new Command("explain", "Show what policy would decide for a request, rule by rule, without minting anything.")
        {
            agent, scopes, audience, context, holdings,
        };
        explain.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var request = new ExplainDecisionRequest
            {
                AgentId = parse.GetValue(agent)!, Audience = parse.GetValue(audience) ?? "", IncludeHoldings = parse.GetValue(holdings),
            };
            request.Scopes.AddRange(ApprovalCommands.Split(parse.GetValue(scopes)));
            foreach (var label in parse.GetValue(context) ?? [])
            {
                var equals = label.IndexOf('=', StringComparison.Ordinal);
                if (equals < 1)
                {
                    throw new UsageException($"--context '{label}' is not key=value.");
                }

                request.Context[label[..equals]] = label[(equals + 1)..];
            }

            Explained(output, await client.ExplainDecisionAsync(request, ct));
            return ExitCodes.Ok;
        }));

        return new Command("policy", "Check, analyze and explain the policy (agents and rules).") { validate, analyze, explain };
    }

    private static int Validate(Output output, FileInfo file)
    {
        IReadOnlyList<PolicyError> errors;
        var version = "";
        try
        {
            var document = PolicyFile.Load(file.FullName);
            (errors, version) = ([], document.Version);
        }
        catch (PolicyFileException e)
        {
            errors = e.Errors;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.Error.WriteLine($"credbroker: cannot read {file.FullName}: {e.Message}");
            return ExitCodes.Failure;
        }

        if (output.Json)
        {
            var wire = errors.Select(e => Output.ToJson(new Contracts.V1.PolicyError
            {
                File = e.Source, Line = e.Line, Column = e.Column, Field = e.Field, Message = e.Message,
            }));
            output.Line($"{{\"valid\":{(errors.Count == 0 ? "true" : "false")},\"version\":\"{version}\",\"errors\":[{string.Join(",", wire)}]}}");
        }
        else if (errors.Count == 0)
        {
            output.Line($"{file.FullName}: valid (version {Short(version)})");
        }
        else
        {
            foreach (var error in errors)
            {
                output.Line(error.ToString());
            }

            output.Error.WriteLine($"credbroker: {file.FullName} is invalid: {errors.Count} error(s); the broker would keep its previous policy.");
        }

        return errors.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static async Task<string> ReadCandidateAsync(FileInfo path, CancellationToken cancellationToken)
    {
        if (!path.Exists)
        {
            throw new UsageException($"--candidate {path.FullName} does not exist.");
        }

        if (path.Length > MaxCandidateBytes)
        {
            throw new UsageException($"--candidate {path.FullName} is {path.Length} bytes; the broker accepts at most {MaxCandidateBytes}.");
        }

        return await File.ReadAllTextAsync(path.FullName, cancellationToken);
    }

    private static void Explained(Output output, ExplainDecisionResponse response)
    {
        if (output.Json)
        {
            output.Message(response);
            return;
        }

        output.Fields([
            ("outcome", response.Outcome), ("reason", response.Reason), ("granted", string.Join(' ', response.GrantedScopes)),
            ("dropped", string.Join(' ', response.DroppedScopes)), ("approval", string.Join(' ', response.ApprovalScopes)), ("audience", response.Audience),
            ("lease ttl", response.LeaseTtl?.ToTimeSpan().ToString() ?? "-"), ("rules", string.Join(' ', response.RuleIds)), ("policy", Short(response.PolicyVersion)),
        ]);
        output.Line("");
        output.Table(["RULE", "EFFECT", "DETAIL"], response.Steps.Select(s => (IReadOnlyList<string>)[s.RuleId, s.Effect, s.Detail]));
    }

    private static string Short(string version) => version.Length > 16 ? version[..16] : (version.Length == 0 ? "-" : version);
}
