using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 8: a <c>within: agent</c> toxic pair must never be held at once, however the
/// requests are timed. Two BeginTasks fired together, one per half of the pair, used to both pass
/// the holdings read before either lease existed; the store now checks and writes in one step.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityToxicRaceTests : PerTestProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Rule = "toxic.secret-exfiltration";
    private const int Rounds = 24;

    private static readonly string Agents = $$"""
        version: 1
        agents:
          - id: triage-agent
            owner: support-team@example.com
            purpose: triage support tickets
            identities: [{{Triage}}]
            audiences: [tickets-api]
            allowed_scopes: [tickets:read, secrets:read:*, http:post:external]
            approval_scopes: [secrets:read:vault]
        toxic_combinations:
          - id: secret-exfiltration
            scopes: [secrets:read:*, http:post:external]
            within: agent
        """;

    protected override string AgentsYaml => Agents;

    // A short refusal window, so the summary of aggregated refusals is written soon (issue 15 item 13).
    protected override string[] BrokerArguments =>
    [
        "--CredBroker:Audit:RefusalWindow=00:00:00.200",
    ];

    [Test]
    public async Task ConcurrentBeginTasks_ForBothHalvesOfAnAgentWidePair_NeverLeaveBothActive_AndTheRefusalIsAnAuditedPolicyDenial()
    {
        using var first = Broker.ClientFor(Triage);
        using var second = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var refusals = 0;
        for (var round = 0; round < Rounds; round++)
        {
            using var start = new ManualResetEventSlim();
            var calls = new[]
            {
                Task.Run(async () => { start.Wait(); return await Attempt(first, "secrets:read:db"); }),
                Task.Run(async () => { start.Wait(); return await Attempt(second, "http:post:external"); }),
            };
            start.Set();
            var results = await Task.WhenAll(calls);

            var granted = results.Where(r => r.Granted is not null).Select(r => r.Granted!).ToList();
            var active = new List<string>();
            foreach (var lease in granted)
            {
                if ((await operators.GetLeaseAsync(lease.LeaseId)).State == "active")
                {
                    active.Add(lease.LeaseId);
                }
            }

            Assert.That(active, Has.Count.LessThanOrEqualTo(1), $"round {round}: both halves of the toxic pair are held at once");
            foreach (var refused in results.Where(r => r.Refused is not null).Select(r => r.Refused!))
            {
                refusals++;
                Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), refused.Detail);
                Assert.That(refused.GetDetail<ErrorInfo>()?.Metadata["rules"], Does.Contain(Rule), refused.Detail);
            }

            foreach (var lease in granted)
            {
                await first.CompleteTaskAsync(lease.LeaseId);
            }
        }

        Assert.That(refusals, Is.GreaterThanOrEqualTo(Rounds), "one of each pair is refused every round");
        // Refusals from one source within a window are recorded as the first one plus a summary with the
        // count of the rest (details.aggregated), written when the window closes: wait for the summary.
        long audited = 0;
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(30); await Task.Delay(200))
        {
            var denied = new List<AuditEvent>();
            await foreach (var record in operators.QueryAuditAsync(new QueryAuditRequest { AgentId = "triage-agent", EventTypes = { "token.denied" } }))
            {
                denied.Add(record.Event);
            }

            audited = denied.Where(e => e.RuleIds.Contains(Rule))
                .Sum(e => e.Details.TryGetValue("aggregated", out var count) ? long.Parse(count, System.Globalization.CultureInfo.InvariantCulture) : 1);
            if (audited >= refusals)
            {
                break;
            }
        }

        Assert.That(audited, Is.EqualTo(refusals), "every refusal is audited with the toxic rule id (one by one or counted in a summary)");
    }

    [Test]
    public async Task AnApprovalRacingABeginTask_ForTheOtherHalfOfAnAgentWidePair_NeverLeavesBothActive()
    {
        using var agent = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        for (var round = 0; round < Rounds; round++)
        {
            var pending = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { "secrets:read:vault" } });
            Assert.That(pending.ApprovalId, Is.Not.Empty, "secrets:read:vault waits for a human");
            using var start = new ManualResetEventSlim();
            var approve = Task.Run(async () =>
            {
                start.Wait();
                try
                {
                    await operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = pending.ApprovalId, Verdict = DecideApprovalRequest.Types.Verdict.Approve, Reason = "ok" });
                    return (RpcException?)null;
                }
                catch (RpcException e)
                {
                    return e;
                }
            });
            var post = Task.Run(async () => { start.Wait(); return await Attempt(agent, "http:post:external"); });
            start.Set();
            var (approveRefused, posted) = (await approve, await post);

            var approved = (await operators.GetLeaseAsync(pending.ApprovalId)).State == "active";
            var postActive = posted.Granted is { } g && (await operators.GetLeaseAsync(g.LeaseId)).State == "active";
            Assert.That(approved && postActive, Is.False, $"round {round}: both halves of the toxic pair are held at once");
            foreach (var refused in new[] { approveRefused, posted.Refused }.OfType<RpcException>())
            {
                Assert.That(refused.StatusCode, Is.AnyOf(StatusCode.PermissionDenied, StatusCode.FailedPrecondition), refused.Detail);
                Assert.That(refused.GetDetail<ErrorInfo>()?.Metadata["rules"], Does.Contain(Rule), refused.Detail);
            }

            if (approved)
            {
                await agent.CompleteTaskAsync(pending.ApprovalId);
            }
            else
            {
                await operators.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = pending.ApprovalId, Verdict = DecideApprovalRequest.Types.Verdict.Deny, Reason = "round over" });
            }

            if (postActive)
            {
                await agent.CompleteTaskAsync(posted.Granted!.LeaseId);
            }
        }
    }

    private static async Task<(BeginTaskResponse? Granted, RpcException? Refused)> Attempt(CredBrokerClient client, string scope)
    {
        try
        {
            return (await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { scope } }), null);
        }
        catch (RpcException e)
        {
            return (null, e);
        }
    }
}
