using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Cli.Tests;

/// <summary>The real <c>credbroker</c> binary against a production-mode broker on real Redis.</summary>
[TestFixture]
[NonParallelizable]
public sealed class CliTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private Dictionary<string, string?> Operator(string subject = ProductionBroker.Operator) => new()
    {
        ["CREDBROKER_OPERATOR_ADDRESS"] = Broker.OperatorAddress.ToString(),
        ["CREDBROKER_OPERATOR_TOKEN"] = Broker.WorkloadToken(subject, audience: ProductionBroker.OperatorAudience),
    };

    private Task<CliProcess.Result> Cli(params string[] args) => CliProcess.RunAsync(Operator(), null, args);

    private async Task<BeginTaskResponse> BeginAsync(string? taskId = null)
    {
        using var client = Broker.ClientFor(Triage);
        return await client.BeginTaskAsync(new BeginTaskRequest
        {
            TaskId = taskId ?? "task-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
        });
    }

    [Test]
    public async Task LeasesRevoke_ThenShow_ReportsTheLeaseRevoked_AndIntrospectionInactive()
    {
        var lease = await BeginAsync();

        var revoke = await Cli("leases", "revoke", lease.LeaseId, "--reason", "leaked in a log");
        var show = await Cli("leases", "show", lease.LeaseId, "--json");
        using var client = Broker.ClientFor(Triage);
        var introspected = await client.IntrospectAsync(lease.AccessToken);

        Assert.That(revoke.ExitCode, Is.EqualTo(0), revoke.Stderr);
        Assert.That(revoke.Stdout, Does.Contain("revoked " + lease.LeaseId));
        Assert.That(show.ExitCode, Is.EqualTo(0), show.Stderr);
        Assert.That(Lease.Parser.ParseJson(show.Stdout).State, Is.EqualTo("revoked"));
        Assert.That(introspected.Active, Is.False);
    }

    [Test]
    public async Task RevokingAgain_IsIdempotent_AndSaysNothingChanged()
    {
        var lease = await BeginAsync();
        await Cli("leases", "revoke", lease.LeaseId, "-r", "first");

        var again = await Cli("leases", "revoke", lease.LeaseId, "-r", "second", "--json");

        Assert.That(again.ExitCode, Is.EqualTo(0), again.Stderr);
        Assert.That(RevokeLeaseResponse.Parser.ParseJson(again.Stdout).Changed, Is.False);
    }

    [Test]
    public async Task TasksRevoke_AddressesTheLeaseByAgentAndTask()
    {
        var task = "task-" + Guid.NewGuid().ToString("N");
        var lease = await BeginAsync(task);

        var result = await Cli("tasks", "revoke", "triage-agent", task, "--reason", "runaway");

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        Assert.That(result.Stdout, Does.Contain(lease.LeaseId));
    }

    [Test]
    public async Task LeasesList_Json_IsAnArrayOfLeasesWithTheNewOne()
    {
        var lease = await BeginAsync();

        var result = await Cli("leases", "list", "--agent", "triage-agent", "--state", "active", "--json");
        using var json = JsonDocument.Parse(result.Stdout);

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        Assert.That(json.RootElement.EnumerateArray().Select(l => l.GetProperty("leaseId").GetString()), Does.Contain(lease.LeaseId));
        Assert.That(json.RootElement.EnumerateArray().Select(l => l.GetProperty("state").GetString()), Is.All.EqualTo("active"));
    }

    [Test]
    public async Task LeasesList_Table_HasAHeaderAndTheLease()
    {
        var lease = await BeginAsync();

        var result = await Cli("leases", "list", "--agent", "triage-agent");

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        var lines = result.Stdout.Split('\n');
        Assert.That(lines[0], Does.Match("^LEASE +AGENT +TASK +STATE +SCOPES +DEADLINE$"));
        Assert.That(lines, Has.Some.StartsWith(lease.LeaseId));
    }

    [Test]
    public async Task AgentsQuarantine_BlocksBeginTask_UntilRelease()
    {
        var lease = await BeginAsync();

        var quarantine = await Cli("agents", "quarantine", "triage-agent", "--reason", "prompt injection", "--json");
        var blocked = Assert.ThrowsAsync<RpcException>(() => BeginAsync());
        var release = await Cli("agents", "release", "triage-agent");
        var after = await BeginAsync();

        Assert.That(quarantine.ExitCode, Is.EqualTo(0), quarantine.Stderr);
        Assert.That(QuarantineAgentResponse.Parser.ParseJson(quarantine.Stdout).LeasesRevoked, Is.GreaterThanOrEqualTo(1));
        Assert.That(blocked!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(release.ExitCode, Is.EqualTo(0), release.Stderr);
        Assert.That(release.Stdout, Does.Contain("released"));
        Assert.That(after.LeaseId, Is.Not.EqualTo(lease.LeaseId));
    }

    [Test]
    public async Task AuditTail_ShowsTheNewestRecords_AsATableAndAsJsonLines()
    {
        var task = "task-" + Guid.NewGuid().ToString("N");
        await BeginAsync(task);

        var table = await Cli("audit", "tail", "-n", "5");
        var json = await Cli("audit", "tail", "-n", "5", "--json", "--task", task);

        Assert.That(table.ExitCode, Is.EqualTo(0), table.Stderr);
        Assert.That(table.Stdout.Split('\n')[0], Does.StartWith("SEQ"));
        Assert.That(table.Stdout, Does.Contain("token.minted"));
        Assert.That(json.ExitCode, Is.EqualTo(0), json.Stderr);
        var record = AuditRecord.Parser.ParseJson(json.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Single());
        Assert.That((record.Event.Type, record.Event.TaskId), Is.EqualTo(("token.minted", task)));
    }

    [Test]
    public async Task AuditTailFollow_PrintsRecordsAsTheyAreAppended()
    {
        var task = "task-" + Guid.NewGuid().ToString("N");
        using var tail = CliProcess.Start(Operator(), "audit", "tail", "-f", "-n", "0", "--json", "--task", task);

        // The follower may connect after the mint, so mint until its record shows (each BeginTask for the task replays idempotently).
        string? line = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (line is null)
        {
            await BeginAsync(task);
            try
            {
                line = tail.WaitForLine(l => l.Contains(task, StringComparison.Ordinal), TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException) when (DateTime.UtcNow < deadline)
            {
            }
        }

        Assert.That(AuditRecord.Parser.ParseJson(line).Event.Type, Is.EqualTo("token.minted"));
    }

    [Test]
    public async Task AuditQuery_FiltersByTypeAndAgent()
    {
        var lease = await BeginAsync();
        await Cli("leases", "revoke", lease.LeaseId, "-r", "query test");

        var result = await Cli("audit", "query", "--type", "lease.revoked", "--lease", lease.LeaseId, "--json");

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        var record = AuditRecord.Parser.ParseJson(result.Stdout.Trim());
        Assert.That((record.Event.Type, record.Event.Operator, record.Event.Reason), Is.EqualTo(("lease.revoked", ProductionBroker.Operator, "query test")));
    }

    [Test]
    public async Task AuditVerify_ExitsZeroOnAnIntactChain()
    {
        await BeginAsync();

        var result = await Cli("audit", "verify", "--json");

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        var verification = VerifyAuditResponse.Parser.ParseJson(result.Stdout);
        Assert.That((verification.Intact, verification.RecordsChecked > 0), Is.EqualTo((true, true)));
    }

    [Test]
    public async Task Status_ReportsHealthAndAcceptsTheCredential()
    {
        var result = await Cli("status", "--json");
        using var json = JsonDocument.Parse(result.Stdout);

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Stderr);
        Assert.That(json.RootElement.GetProperty("health").GetString(), Is.EqualTo("Serving"));
        Assert.That(json.RootElement.GetProperty("authenticated").GetBoolean(), Is.True);
    }

    [Test]
    public async Task UnreachableServer_Exits6WithAClearMessage()
    {
        var environment = Operator();
        environment["CREDBROKER_OPERATOR_ADDRESS"] = $"http://127.0.0.1:{RedisServer.FreePort()}";

        var result = await CliProcess.RunAsync(environment, null, "leases", "list", "--timeout", "3");

        Assert.That(result.ExitCode, Is.EqualTo(6));
        Assert.That(result.Stderr, Does.Contain("cannot reach the broker's operator listener"));
    }

    [Test]
    public async Task MissingCredential_Exits4AndSaysHowToPassOne()
    {
        var environment = Operator();
        environment.Remove("CREDBROKER_OPERATOR_TOKEN");

        var result = await CliProcess.RunAsync(environment, null, "leases", "list");

        Assert.That(result.ExitCode, Is.EqualTo(4));
        Assert.That(result.Stderr, Does.Contain("--token-file"));
    }

    [Test]
    public async Task CredentialWithoutTheOperatorRole_Exits4WithTheBrokersReason()
    {
        var result = await CliProcess.RunAsync(Operator("mallory@example.com"), null, "leases", "list");

        Assert.That(result.ExitCode, Is.EqualTo(4));
        Assert.That(result.Stderr, Does.Contain("not an operator"));
    }

    [Test]
    public async Task UnknownLease_Exits3()
    {
        var result = await Cli("leases", "show", "l00_aaaaaaaaaaaaaaaaaaaaaaaaaa");

        Assert.That(result.ExitCode, Is.EqualTo(3), result.Stderr);
    }

    [Test]
    public async Task MissingReason_IsAUsageError_Exit2()
    {
        var result = await Cli("leases", "revoke", "l00_aaaaaaaaaaaaaaaaaaaaaaaaaa");

        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Stderr, Does.Contain("--reason"));
    }
}
