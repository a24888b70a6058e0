using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Verdict = CredBroker.Contracts.V1.DecideApprovalRequest.Types.Verdict;

namespace CredBroker.Server.Tests;

/// <summary>
/// The intervention point end to end over gRPC against real Redis: BeginTask → pending →
/// WatchApproval → operator approves (narrowing) or denies → the agent sees it; and expiry.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ApprovalEndToEndTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static BeginTaskRequest ExportRequest() => new()
    {
        TaskId = "export-" + Guid.NewGuid().ToString("N"),
        Purpose = "export the week's tickets for the quarterly review",
        Scopes = { "tickets:read", "tickets:export" },
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };

    /// <summary>Reads the stream in the background, so the test can act while the agent watches.</summary>
    private static (List<ApprovalStatus> Seen, Task Done) Watch(CredBrokerClient client, string approvalId, CancellationToken cancellationToken)
    {
        var seen = new List<ApprovalStatus>();
        var done = Task.Run(async () =>
        {
            await foreach (var status in client.WatchApprovalAsync(approvalId, cancellationToken))
            {
                lock (seen)
                {
                    seen.Add(status);
                }
            }
        }, cancellationToken);
        return (seen, done);
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }

    [Test]
    public async Task Approve_WithNarrowing_TheWatchingAgentGetsATokenWithTheNarrowedScopes()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        using var cancel = new CancellationTokenSource(Patience);
        var request = ExportRequest();

        var begun = await agent.BeginTaskAsync(request);
        Assert.That(begun.ApprovalId, Is.EqualTo(begun.LeaseId).And.Not.Empty);
        Assert.That(begun.AccessToken, Is.Empty, "no token before a human approved");
        Assert.That(begun.ApprovalScopes, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That(begun.RuleIds, Does.Contain("agent.approval"));
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("pending_approval"));
        var (seen, done) = Watch(agent, begun.ApprovalId, cancel.Token);
        await WaitForAsync(() => { lock (seen) { return seen.Count == 1; } }, "the pending status");

        var listed = await operators.ListApprovalsAsync(new ListApprovalsRequest { AgentId = "triage-agent" });
        var mine = listed.Approvals.Single(a => a.ApprovalId == begun.ApprovalId);
        Assert.That((mine.State, mine.Purpose, mine.Owner), Is.EqualTo(("pending", request.Purpose, "support-team@example.com")));
        Assert.That(mine.RequestedScopes, Is.EqualTo(new[] { "tickets:export", "tickets:read" }));
        var decided = await operators.DecideApprovalAsync(new DecideApprovalRequest
        {
            ApprovalId = begun.ApprovalId, Verdict = Verdict.Approve, Scopes = { "tickets:export" }, Reason = "export only; reading is not needed",
        });
        await done;

        Assert.That(decided.Approval.State, Is.EqualTo("approved"));
        Assert.That(decided.Approval.DecidedBy, Is.EqualTo(ProductionBroker.Operator));
        Assert.That(seen.Select(s => s.State), Is.EqualTo(new[] { "pending", "approved" }));
        Assert.That(seen[0].AccessToken, Is.Empty);
        var approved = seen[1];
        Assert.That(approved.GrantedScopes, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That(approved.Reason, Is.EqualTo("export only; reading is not needed"));
        Assert.That(Payload(approved.AccessToken).GetProperty("scope").GetString(), Is.EqualTo("tickets:export"));
        Assert.That((await agent.IntrospectAsync(approved.AccessToken)).Active, Is.True);

        var repeated = await agent.BeginTaskAsync(request);
        Assert.That(repeated.LeaseId, Is.EqualTo(begun.LeaseId), "BeginTask with the same task_id returns the approved lease");
        Assert.That(repeated.ApprovalId, Is.Empty);
        Assert.That(repeated.GrantedScopes, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That(repeated.LeaseDeadline.ToDateTimeOffset(), Is.GreaterThan(DateTimeOffset.UtcNow.AddMinutes(4)), "the task's ttl starts at approval");
        var wider = Assert.ThrowsAsync<RpcException>(() => agent.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "tickets:read" } }));
        Assert.That(wider!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), "the narrowed-away scope is not in the lease");
        var twice = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = Verdict.Deny, Reason = "too late" }));
        Assert.That(twice!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
    }

    [Test]
    public async Task Deny_TheWatchingAgentSeesTheReason_AndNoTokenIsEverIssued()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        using var cancel = new CancellationTokenSource(Patience);
        var request = ExportRequest();
        var begun = await agent.BeginTaskAsync(request);
        var (seen, done) = Watch(agent, begun.ApprovalId, cancel.Token);
        await WaitForAsync(() => { lock (seen) { return seen.Count == 1; } }, "the pending status");

        var missingReason = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = Verdict.Deny }));
        await operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = Verdict.Deny, Reason = "exports are frozen this week" });
        await done;

        Assert.That(missingReason!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(seen.Select(s => (s.State, s.Reason, s.AccessToken)), Is.EqualTo(new[]
        {
            ("pending", seen[0].Reason, string.Empty),
            ("denied", "exports are frozen this week", string.Empty),
        }));
        Assert.That(seen[0].Reason, Does.Contain("tickets:export"));
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("revoked"));
        var again = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(request));
        Assert.That(again!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        var listed = await operators.ListApprovalsAsync(new ListApprovalsRequest { AgentId = "triage-agent" });
        Assert.That(listed.Approvals.Select(a => a.ApprovalId), Does.Not.Contain(begun.ApprovalId));
    }

    [Test]
    public async Task Expiry_AnUndecidedApprovalExpires_TheWatcherSeesIt_AndTheSweeperRecordsIt()
    {
        await using var broker = new ProductionBroker(ProductionBroker.AgentsYaml + "\nsettings: { approval_timeout: 1s }\n");
        await broker.StartAsync(RedisUnderTest.ConnectionString);
        using var agent = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        using var cancel = new CancellationTokenSource(Patience);

        var begun = await agent.BeginTaskAsync(ExportRequest());
        var expiresAt = begun.LeaseDeadline.ToDateTimeOffset();
        var seen = new List<ApprovalStatus>();
        await foreach (var status in agent.WatchApprovalAsync(begun.ApprovalId, cancel.Token))
        {
            seen.Add(status);
        }

        Assert.That(seen.Select(s => s.State), Is.EqualTo(new[] { "pending", "expired" }));
        Assert.That(DateTimeOffset.UtcNow, Is.GreaterThanOrEqualTo(expiresAt.AddMilliseconds(-5)), "not before its deadline");
        await WaitForAsync(() => operators.GetLeaseAsync(begun.LeaseId).GetAwaiter().GetResult().State == "expired", "the sweep");
        var late = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId, Verdict = Verdict.Approve }));
        Assert.That(late!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Assert.That(late.Detail, Does.Contain("expired"));
    }

    [Test]
    public async Task ApprovalIds_AreScopedToTheirAgent_AndApprovalsOnlyNarrow()
    {
        using var agent = Broker.ClientFor(Triage);
        using var billing = Broker.ClientFor("system:serviceaccount:finance:billing");
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(ExportRequest());

        var foreign = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in billing.WatchApprovalAsync(begun.ApprovalId))
            {
            }
        });
        var widened = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest
        {
            ApprovalId = begun.ApprovalId, Verdict = Verdict.Approve, Scopes = { "tickets:export", "tickets:comment" },
        }));
        var noVerdict = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = begun.ApprovalId }));
        var unknown = Assert.ThrowsAsync<RpcException>(() => operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = "nope", Verdict = Verdict.Approve }));

        Assert.That(foreign!.StatusCode, Is.EqualTo(StatusCode.NotFound), "another agent's approval is not found");
        Assert.That(widened!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(widened.Detail, Does.Contain("tickets:comment").And.Contain("only narrow"));
        Assert.That(noVerdict!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(unknown!.StatusCode, Is.EqualTo(StatusCode.NotFound));
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("pending_approval"), "failed decisions change nothing");
    }

    private static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();
}
