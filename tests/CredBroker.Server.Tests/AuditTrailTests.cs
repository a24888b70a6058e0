using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>Every outcome the broker has today lands in the audit chain with its fields, end to end against real Redis.</summary>
[TestFixture]
[NonParallelizable]
public sealed class AuditTrailTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    private readonly string _jsonLines = Path.Combine(Path.GetTempPath(), "credbroker-audit-" + Guid.NewGuid().ToString("N") + ".jsonl");
    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker();
        await _broker.StartAsync(_redis.ConnectionString, "--CredBroker:Audit:CheckpointInterval=5", $"--CredBroker:Audit:JsonLinesFile={_jsonLines}");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _broker.DisposeAsync();
        _redis.Dispose();
        File.Delete(_jsonLines);
    }

    private static BeginTaskRequest Request(string scope = "tickets:read", TimeSpan? ttl = null) => new()
    {
        TaskId = "task-" + Guid.NewGuid().ToString("N"),
        Scopes = { scope },
        Ttl = Duration.FromTimeSpan(ttl ?? TimeSpan.FromMinutes(2)),
    };

    private async Task<List<AuditRecord>> QueryAsync(QueryAuditRequest request)
    {
        using var op = _broker.OperatorClient();
        var records = new List<AuditRecord>();
        await foreach (var record in op.QueryAuditAsync(request))
        {
            records.Add(record);
        }

        return records;
    }

    [Test]
    public async Task MintRenewIssueDenyComplete_AreAuditedWithAgentTaskLeaseScopesRulesAndCaller()
    {
        using var client = _broker.ClientFor(Triage);
        var begin = Request();
        var begun = await client.BeginTaskAsync(begin);
        await client.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId, ExtendBy = Duration.FromTimeSpan(TimeSpan.FromMinutes(3)) });
        Assert.ThrowsAsync<RpcException>(() => client.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "kb:read" } }));
        await client.CompleteTaskAsync(begun.LeaseId);

        var records = await QueryAsync(new QueryAuditRequest { TaskId = begin.TaskId });

        Assert.That(records.Select(r => r.Event.Type), Is.EqualTo(new[] { "token.minted", "lease.renewed", "token.denied", "lease.completed" }));
        var minted = records[0].Event;
        Assert.That((minted.AgentId, minted.Owner, minted.TaskId, minted.LeaseId, minted.Audience),
            Is.EqualTo(("triage-agent", "support-team@example.com", begin.TaskId, begun.LeaseId, "tickets-api")));
        Assert.That(minted.ScopesRequested, Is.EqualTo(new[] { "tickets:read" }));
        Assert.That(minted.ScopesGranted, Is.EqualTo(new[] { "tickets:read" }));
        Assert.That(minted.RuleIds, Does.Contain("agent.allowed_scopes"));
        Assert.That(minted.Caller, Does.StartWith("triage-agent"));
        Assert.That(minted.Details["operation"], Is.EqualTo("begin_task"));
        Assert.That(minted.Details["jti"], Is.Not.Empty);
        Assert.That(records[2].Event.RuleIds, Is.EqualTo(new[] { "lease.scope_subset" }));
        Assert.That(records[2].Event.ScopesRequested, Is.EqualTo(new[] { "kb:read" }));
        Assert.That(records[3].Event.Details["changed"], Is.EqualTo("true"));
        Assert.That(records.Select(r => r.CanonicalJson), Has.None.Contains(begun.AccessToken), "a token is never in the audit trail");
        Assert.That(records.Select(r => r.CanonicalJson), Has.None.Contains(begun.AccessToken.Split('.')[2]), "not even its signature");
    }

    [Test]
    public async Task PolicyDenial_IsAuditedWithTheDecidingRule()
    {
        using var client = _broker.ClientFor(Triage);
        var begin = Request("tickets:delete");

        var refused = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(begin));
        var records = await QueryAsync(new QueryAuditRequest { TaskId = begin.TaskId, EventTypes = { "token.denied" } });

        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(records, Has.Count.EqualTo(1));
        Assert.That(records[0].Event.RuleIds, Does.Contain("agent.disallowed_scope"));
        Assert.That(records[0].Event.ScopesRequested, Is.EqualTo(new[] { "tickets:delete" }));
        Assert.That(records[0].Event.ScopesGranted, Is.Empty);
        Assert.That(records[0].Event.Reason, Does.Contain("disallowed"));
    }

    [Test]
    public async Task OperatorRevokeQuarantineRelease_AreAuditedWithTheOperatorAndReason()
    {
        using var client = _broker.ClientFor(Triage);
        using var op = _broker.OperatorClient();
        var begun = await client.BeginTaskAsync(Request());
        await op.RevokeLeaseAsync(begun.LeaseId, "suspicious export");
        await op.QuarantineAgentAsync("billing-agent", "incident 42");
        await op.ReleaseAgentAsync("billing-agent");

        var revoked = await QueryAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "lease.revoked" } });
        var agent = await QueryAsync(new QueryAuditRequest { AgentId = "billing-agent", EventTypes = { "agent.quarantined", "agent.released" } });

        Assert.That(revoked.Single().Event.Operator, Is.EqualTo(ProductionBroker.Operator));
        Assert.That(revoked.Single().Event.Reason, Is.EqualTo("suspicious export"));
        Assert.That(revoked.Single().Event.Details["changed"], Is.EqualTo("true"));
        Assert.That(agent.Select(r => (r.Event.Type, r.Event.Operator)).TakeLast(2),
            Is.EqualTo(new[] { ("agent.quarantined", ProductionBroker.Operator), ("agent.released", ProductionBroker.Operator) }));
        Assert.That(agent[^2].Event.Reason, Is.EqualTo("incident 42"));
    }

    [Test]
    public async Task SweptLease_IsAuditedAsExpiredByTheSweeper()
    {
        using var client = _broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Request(ttl: TimeSpan.FromSeconds(1)));
        var deadline = DateTime.UtcNow.AddSeconds(15);

        List<AuditRecord> expired;
        while ((expired = await QueryAsync(new QueryAuditRequest { LeaseId = begun.LeaseId, EventTypes = { "lease.expired" } })).Count == 0)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the sweeper audits the expiry");
            await Task.Delay(50);
        }

        Assert.That((expired[0].Event.AgentId, expired[0].Event.Owner), Is.EqualTo(("triage-agent", "support-team@example.com")));
        Assert.That(expired[0].Event.Details["deadline"], Is.Not.Empty);
    }

    [Test]
    public async Task RefusedOperatorCredential_IsAuditedWithoutTheCredential()
    {
        var agentToken = _broker.WorkloadToken(Triage);
        using var impostor = new CredBroker.Client.CredBrokerOperatorClient(_broker.OperatorAddress, () => agentToken);

        var refused = Assert.ThrowsAsync<RpcException>(() => impostor.ListLeasesAsync(new ListLeasesRequest()));
        var failures = await QueryAsync(new QueryAuditRequest { EventTypes = { "operator.auth_failed" }, Tail = 50 });

        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(failures.Last().Event.Details["method"], Is.EqualTo("/credbroker.v1.Operator/ListLeases"));
        Assert.That(failures.Last().Event.Caller, Does.StartWith("127.0.0.1"));
        Assert.That(failures.Select(f => f.CanonicalJson), Has.None.Contains(agentToken));
    }

    [Test]
    public async Task Follow_DeliversRecordsAppendedAfterTheStreamOpened()
    {
        using var client = _broker.ClientFor(Triage);
        using var op = _broker.OperatorClient();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var begin = Request();
        var stream = op.QueryAuditAsync(new QueryAuditRequest { TaskId = begin.TaskId, Follow = true }, cancel.Token).GetAsyncEnumerator(cancel.Token);
        var first = stream.MoveNextAsync().AsTask();

        await client.BeginTaskAsync(begin);

        Assert.That(await first, Is.True);
        Assert.That((stream.Current.Event.Type, stream.Current.Event.TaskId), Is.EqualTo(("token.minted", begin.TaskId)));
        await cancel.CancelAsync();
        await stream.DisposeAsync();
    }

    [Test]
    public async Task JsonLinesFile_CarriesTheSameRecordsAsTheChain()
    {
        using var client = _broker.ClientFor(Triage);
        var begin = Request();
        await client.BeginTaskAsync(begin);
        var chain = (await QueryAsync(new QueryAuditRequest { TaskId = begin.TaskId })).Single();

        var line = File.ReadLines(_jsonLines).Single(l => l.Contains(begin.TaskId, StringComparison.Ordinal));
        using var json = System.Text.Json.JsonDocument.Parse(line);

        Assert.That(json.RootElement.GetProperty("sequence").GetInt64(), Is.EqualTo(chain.Sequence));
        Assert.That(json.RootElement.GetProperty("hash").GetString(), Is.EqualTo(chain.Hash));
        Assert.That(json.RootElement.GetProperty("event").GetRawText(), Is.EqualTo(chain.CanonicalJson));
    }

    [Test]
    public async Task VerifyAudit_ReportsTheLiveChainIntactWithCheckpoints()
    {
        using var client = _broker.ClientFor(Triage);
        using var op = _broker.OperatorClient();
        for (var i = 0; i < 6; i++)
        {
            await client.BeginTaskAsync(Request());
        }

        var result = await op.VerifyAuditAsync();

        Assert.That(result.Intact, Is.True, result.Problem);
        Assert.That(result.RecordsChecked, Is.GreaterThanOrEqualTo(6));
        Assert.That(result.CheckpointsVerified, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public void QueryAudit_RejectsAnUnknownEventTypeWithTheValidOnes()
    {
        using var op = _broker.OperatorClient();

        var refused = Assert.ThrowsAsync<RpcException>(() => QueryAsync(new QueryAuditRequest { EventTypes = { "token.stolen" } }));

        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(refused.Detail, Does.Contain("token.minted"));
    }

    private async Task<List<AuditRecord>> WaitForRecordsAsync(QueryAuditRequest request, Func<AuditRecord, bool> match, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<AuditRecord> found;
        while ((found = (await QueryAsync(request)).Where(match).ToList()).Count == 0)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), what);
            await Task.Delay(50);
        }

        return found;
    }

    private static BeginTaskRequest ExportRequest() => new()
    {
        TaskId = "export-" + Guid.NewGuid().ToString("N"),
        Scopes = { "tickets:read", "tickets:export" },
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };

    [Test]
    public async Task KeyRotation_IsAuditedWithTheOperatorTheNewKidAndWhenItSigns()
    {
        using var op = _broker.OperatorClient();
        var kid = await _broker.AddSigningKeyAsync();

        var rotated = await op.RotateSigningKeyAsync(kid, "quarterly rotation");
        var records = await QueryAsync(new QueryAuditRequest { EventTypes = { "signing_key.rotated" } });

        var rotation = records.Single().Event;
        Assert.That((rotation.Operator, rotation.Reason), Is.EqualTo((ProductionBroker.Operator, "quarterly rotation")));
        Assert.That(rotation.Details["kid"], Is.EqualTo(kid));
        Assert.That(DateTimeOffset.Parse(rotation.Details["activate_at"], System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(rotated.ActivateAt.ToDateTimeOffset()));
        Assert.That(rotation.Details["previous_kid"], Is.Not.Empty.And.Not.EqualTo(kid));
    }

    [Test]
    public async Task PolicyReload_ByAnOperator_IsAuditedApplied_AndABrokenFileIsAuditedWithItsErrors()
    {
        using var op = _broker.OperatorClient();
        var original = await File.ReadAllTextAsync(_broker.PolicyFile);
        var since = DateTimeOffset.UtcNow;
        ReloadPolicyResponse applied, refused;
        try
        {
            applied = await op.ReloadPolicyAsync();
            await File.WriteAllTextAsync(_broker.PolicyFile, original + "\nbogus_key: 1\n");
            refused = await op.ReloadPolicyAsync();
        }
        finally
        {
            await File.WriteAllTextAsync(_broker.PolicyFile, original);
        }

        var records = (await QueryAsync(new QueryAuditRequest { EventTypes = { "policy.reloaded" }, Since = Timestamp.FromDateTimeOffset(since) }))
            .Where(r => r.Event.Operator == ProductionBroker.Operator).ToList();

        Assert.That((applied.Applied, refused.Applied), Is.EqualTo((true, false)));
        Assert.That(records.Select(r => r.Event.Details["applied"]), Is.EqualTo(new[] { "true", "false" }));
        Assert.That(records[0].Event.Details["version"], Is.EqualTo(applied.Version));
        Assert.That(records[1].Event.Details["errors"], Is.Not.EqualTo("0"));
        Assert.That(records[1].Event.Reason, Does.Contain("bogus_key"));
    }

    [Test]
    public async Task PolicyReload_ByTheFileWatcher_IsAuditedAsTheWatcher()
    {
        var original = await File.ReadAllTextAsync(_broker.PolicyFile);
        var since = DateTimeOffset.UtcNow;
        List<AuditRecord> watched;
        try
        {
            await File.WriteAllTextAsync(_broker.PolicyFile, original + "\n# edited " + Guid.NewGuid().ToString("N") + "\n");
            watched = await WaitForRecordsAsync(new QueryAuditRequest { EventTypes = { "policy.reloaded" }, Since = Timestamp.FromDateTimeOffset(since) },
                r => r.Event.Caller == "policy-file-watcher", "the watcher's reload is audited");
        }
        finally
        {
            await File.WriteAllTextAsync(_broker.PolicyFile, original);
        }

        Assert.That((watched[0].Event.Operator, watched[0].Event.Details["applied"]), Is.EqualTo(("", "true")));
    }

    [Test]
    public async Task ApprovalDecisions_AreAuditedWithOperatorVerdictNarrowedScopesAndReason()
    {
        using var client = _broker.ClientFor(Triage);
        using var op = _broker.OperatorClient();
        var approveMe = await client.BeginTaskAsync(ExportRequest());
        var denyMe = await client.BeginTaskAsync(ExportRequest());

        await op.DecideApprovalAsync(new DecideApprovalRequest
        {
            ApprovalId = approveMe.ApprovalId, Verdict = DecideApprovalRequest.Types.Verdict.Approve, Scopes = { "tickets:export" }, Reason = "ticket 4711",
        });
        await op.DecideApprovalAsync(new DecideApprovalRequest { ApprovalId = denyMe.ApprovalId, Verdict = DecideApprovalRequest.Types.Verdict.Deny, Reason = "not this week" });
        var approved = (await QueryAsync(new QueryAuditRequest { LeaseId = approveMe.ApprovalId, EventTypes = { "approval.decided" } })).Single().Event;
        var denied = (await QueryAsync(new QueryAuditRequest { LeaseId = denyMe.ApprovalId, EventTypes = { "approval.decided" } })).Single().Event;

        Assert.That((approved.Operator, approved.Details["verdict"], approved.Details["narrowed"], approved.Reason),
            Is.EqualTo((ProductionBroker.Operator, "approve", "true", "ticket 4711")));
        Assert.That(approved.ScopesRequested, Is.EqualTo(new[] { "tickets:export", "tickets:read" }));
        Assert.That(approved.ScopesGranted, Is.EqualTo(new[] { "tickets:export" }));
        Assert.That((approved.AgentId, approved.Owner), Is.EqualTo(("triage-agent", "support-team@example.com")));
        Assert.That((denied.Operator, denied.Details["verdict"], denied.Reason), Is.EqualTo((ProductionBroker.Operator, "deny", "not this week")));
        Assert.That(denied.ScopesGranted, Is.Empty);
    }

    [Test]
    public async Task UndecidedApproval_IsAuditedAsApprovalExpired_NotAsALeaseExpiry()
    {
        // Its own Redis: a second broker with other signing keys and settings does not belong on this fixture's audit chain.
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker(ProductionBroker.AgentsYaml + "\nsettings: { approval_timeout: 1s }\n");
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Triage);
        using var op = broker.OperatorClient();
        var request = ExportRequest();
        var pending = await client.BeginTaskAsync(request);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<AuditRecord> expired;
        while ((expired = await op.QueryAuditAsync(new QueryAuditRequest { LeaseId = pending.ApprovalId })
            .Where(r => r.Event.Type.EndsWith(".expired", StringComparison.Ordinal)).ToListAsync()).Count == 0)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the sweeper audits the unanswered approval");
            await Task.Delay(50);
        }

        Assert.That(expired.Select(r => r.Event.Type), Is.EqualTo(new[] { "approval.expired" }));
        Assert.That((expired[0].Event.AgentId, expired[0].Event.TaskId), Is.EqualTo(("triage-agent", request.TaskId)));
    }
}
