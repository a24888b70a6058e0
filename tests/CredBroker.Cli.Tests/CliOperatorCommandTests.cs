using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Cli.Tests;

/// <summary><c>approvals</c>, <c>policy</c> and <c>keys</c>: the real binary against a production-mode broker on real Redis.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CliOperatorCommandTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;
    private string _dir = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _dir = Directory.CreateTempSubdirectory("credbroker-cli-").FullName;
        _redis = RedisServer.Start();
        _broker = new ProductionBroker();
        await _broker.StartAsync(_redis.ConnectionString);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _broker.DisposeAsync();
        _redis.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private Dictionary<string, string?> Operator() => new()
    {
        ["CREDBROKER_OPERATOR_ADDRESS"] = _broker.OperatorAddress.ToString(),
        ["CREDBROKER_OPERATOR_TOKEN"] = _broker.WorkloadToken(ProductionBroker.Operator, audience: ProductionBroker.OperatorAudience),
    };

    private Task<CliProcess.Result> Cli(params string[] args) => CliProcess.RunAsync(Operator(), null, args);

    /// <summary>tickets:export is an approval scope of triage-agent: BeginTask parks the request and returns its approval id.</summary>
    private async Task<BeginTaskResponse> RequestExportAsync()
    {
        using var client = _broker.ClientFor(Triage);
        var response = await client.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = "task-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read", "tickets:export" }, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
        });
        Assert.That(response.ApprovalId, Is.Not.Empty, "the request should await approval");
        return response;
    }

    [Test]
    public async Task ApprovalsList_ShowsThePendingRequest_ThenApproveNarrowsTheGrant()
    {
        var pending = await RequestExportAsync();

        var table = await Cli("approvals", "list", "--agent", "triage-agent");
        var approve = await Cli("approvals", "approve", pending.ApprovalId, "--scopes", "tickets:export", "--reason", "customer asked", "--json");
        var listed = await Cli("approvals", "list", "--agent", "triage-agent", "--json");
        using var json = JsonDocument.Parse(listed.Stdout);

        Assert.That(table.ExitCode, Is.EqualTo(0), table.Stderr);
        Assert.That(table.Stdout.Split('\n')[0], Does.Match("^APPROVAL +AGENT +TASK +STATE +NEEDS +REQUESTED +EXPIRES +REASON$"));
        Assert.That(table.Stdout.Split('\n'), Has.Some.StartsWith(pending.ApprovalId));
        Assert.That(approve.ExitCode, Is.EqualTo(0), approve.Stderr);
        var approval = Approval.Parser.ParseJson(approve.Stdout);
        Assert.That((approval.State, approval.DecidedBy, approval.Note), Is.EqualTo(("approved", ProductionBroker.Operator, "customer asked")));
        Assert.That(approval.GrantedScopes, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That(listed.ExitCode, Is.EqualTo(0), listed.Stderr);
        Assert.That(json.RootElement.EnumerateArray().Where(a => a.GetProperty("approvalId").GetString() == pending.ApprovalId).Select(a => a.GetProperty("state").GetString()),
            Is.All.Not.EqualTo("pending"));
    }

    [Test]
    public async Task ApprovalsDeny_RecordsTheReason_AndDenyingAgainIsAConflict()
    {
        var pending = await RequestExportAsync();

        var deny = await Cli("approvals", "deny", pending.ApprovalId, "--reason", "no exports on Fridays");
        var again = await Cli("approvals", "deny", pending.ApprovalId, "--reason", "twice");

        Assert.That(deny.ExitCode, Is.EqualTo(0), deny.Stderr);
        Assert.That(deny.Stdout, Does.StartWith("denied " + pending.ApprovalId).And.Contain("no exports on Fridays"));
        Assert.That(again.ExitCode, Is.EqualTo(ExitCodes.Conflict), "a decided approval cannot be decided again: " + again.Stderr);
    }

    [Test]
    public async Task ApprovalsDeny_WithoutAReason_IsAUsageError_Exit2()
    {
        var result = await Cli("approvals", "deny", "l00_aaaaaaaaaaaaaaaaaaaaaaaaaa");

        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Stderr, Does.Contain("--reason"));
    }

    [Test]
    public async Task KeysRotate_WithNoSpareKey_Exits7_ThenRotatesOnceAKeyIsMounted()
    {
        var refused = await Cli("keys", "rotate", "--reason", "no key yet");
        var kid = await _broker.AddSigningKeyAsync();
        var rotated = await Cli("keys", "rotate", "--reason", "scheduled", "--json");

        Assert.That(refused.ExitCode, Is.EqualTo(ExitCodes.Conflict), refused.Stderr);
        Assert.That(refused.Stderr, Does.StartWith("credbroker: "));
        Assert.That(rotated.ExitCode, Is.EqualTo(0), rotated.Stderr);
        var response = RotateSigningKeyResponse.Parser.ParseJson(rotated.Stdout);
        Assert.That(response.Kid, Is.EqualTo(kid));
        Assert.That(response.Keys.Select(k => k.Kid), Does.Contain(kid));
        Assert.That(response.Keys.Single(k => k.Kid == kid).Phase, Is.EqualTo("published"));
        Assert.That(response.ActivateAt.ToDateTimeOffset(), Is.GreaterThan(DateTimeOffset.UtcNow.AddMinutes(-1)));
    }

    [Test]
    public async Task PolicyValidate_ABrokenFile_ExitsNonZero_NamingTheLine()
    {
        var path = Path.Combine(_dir, "broken.yaml");
        await File.WriteAllTextAsync(path, ProductionBroker.AgentsYaml.Replace("    purpose: triage support tickets\n", "    purpose: triage support tickets\n    colour: blue\n", StringComparison.Ordinal));
        var line = File.ReadAllLines(path).ToList().FindIndex(l => l.Contains("colour", StringComparison.Ordinal)) + 1;

        var result = await CliProcess.RunAsync(new Dictionary<string, string?>(), null, "policy", "validate", path);

        Assert.That(line, Is.GreaterThan(0));
        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.Stdout + result.Stderr);
        Assert.That(result.Stdout, Does.Contain($"{path}:{line}:").And.Contain("colour"));
        Assert.That(result.Stderr, Does.Contain("invalid"));
    }

    [Test]
    public async Task PolicyValidate_TheBrokersOwnFile_IsValid_WithoutAServer()
    {
        var environment = new Dictionary<string, string?> { ["CREDBROKER_OPERATOR_ADDRESS"] = $"http://127.0.0.1:{RedisServer.FreePort()}" };

        var result = await CliProcess.RunAsync(environment, null, "policy", "validate", _broker.PolicyFile, "--json");
        using var json = JsonDocument.Parse(result.Stdout);

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        Assert.That(json.RootElement.GetProperty("valid").GetBoolean(), Is.True);
        Assert.That(json.RootElement.GetProperty("errors").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task PolicyAnalyze_TheLivePolicy_Succeeds_AndAnInvalidCandidateExits1()
    {
        var path = Path.Combine(_dir, "candidate.yaml");
        await File.WriteAllTextAsync(path, "agents: [");

        var live = await Cli("policy", "analyze", "--json");
        var candidate = await Cli("policy", "analyze", "--candidate", path, "--json");

        Assert.That(live.ExitCode, Is.EqualTo(0), live.Stderr);
        Assert.That(AnalyzePolicyResponse.Parser.ParseJson(live.Stdout).Version, Is.Not.Empty);
        Assert.That(candidate.ExitCode, Is.EqualTo(ExitCodes.Failure), candidate.Stderr);
        Assert.That(AnalyzePolicyResponse.Parser.ParseJson(candidate.Stdout).Findings.Select(f => f.Kind), Does.Contain("invalid"));
    }

    [Test]
    public async Task PolicyExplain_AnApprovalScope_RequiresApproval_RuleByRule()
    {
        var json = await Cli("policy", "explain", "--agent", "triage-agent", "--scopes", "tickets:read,tickets:export", "--audience", "tickets-api", "--json");
        var table = await Cli("policy", "explain", "--agent", "triage-agent", "--scopes", "tickets:read");

        Assert.That(json.ExitCode, Is.EqualTo(0), json.Stderr);
        var decision = ExplainDecisionResponse.Parser.ParseJson(json.Stdout);
        Assert.That((decision.Outcome, decision.Audience), Is.EqualTo(("require_approval", "tickets-api")));
        Assert.That(decision.ApprovalScopes, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That(decision.Steps, Is.Not.Empty);
        Assert.That(table.ExitCode, Is.EqualTo(0), table.Stderr);
        Assert.That(table.Stdout, Does.StartWith("outcome").And.Contain("allow").And.Contain("RULE"));
    }

    [Test]
    public async Task PolicyExplain_AContextLabelWithoutEquals_IsAUsageError()
    {
        var result = await Cli("policy", "explain", "--agent", "triage-agent", "--scopes", "tickets:read", "--context", "email");

        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Stderr, Does.Contain("key=value"));
    }
}
