using System.Diagnostics;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using StackExchange.Redis;

namespace CredBroker.Server.Tests;

/// <summary>Leases that always end, end to end against real Redis: sweeper, operator revocation, quarantine, quotas and the revocation feed.</summary>
[TestFixture]
[NonParallelizable]
public sealed class LeaseLifecycleTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Billing = "system:serviceaccount:finance:billing";

    private static BeginTaskRequest Request(TimeSpan? ttl = null, string scope = "tickets:read") => new()
    {
        TaskId = "task-" + Guid.NewGuid().ToString("N"),
        Scopes = { scope },
        Ttl = Duration.FromTimeSpan(ttl ?? TimeSpan.FromMinutes(2)),
    };

    [Test]
    public async Task TimedOutLease_IsSweptToExpiredInRedisWithinASecondOfItsDeadline()
    {
        using var client = Broker.ClientFor(Triage);
        using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUnderTest.ConnectionString);
        var begun = await client.BeginTaskAsync(Request(TimeSpan.FromSeconds(1)));
        var deadline = begun.LeaseDeadline.ToDateTimeOffset();
        var deadlines = DeadlineIndexOf(begun.LeaseId);
        Assert.That(await redis.GetDatabase().SortedSetScoreAsync(deadlines, begun.LeaseId), Is.EqualTo((double)deadline.ToUnixTimeMilliseconds()), "indexed at its deadline");

        // The sweeper (not a read-time view) records the expiry in the store: it takes the lease off the deadline index.
        while (await redis.GetDatabase().SortedSetScoreAsync(deadlines, begun.LeaseId) is not null)
        {
            Assert.That(DateTimeOffset.UtcNow, Is.LessThan(deadline.AddSeconds(1)), "swept within 1 s of the deadline");
            await Task.Delay(20);
        }

        Assert.That(DateTimeOffset.UtcNow, Is.GreaterThanOrEqualTo(deadline), "never before the deadline");
        using var operators = Broker.OperatorClient();
        Assert.That((await operators.GetLeaseAsync(begun.LeaseId)).State, Is.EqualTo("expired"));
        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.False);
    }

    [Test]
    public async Task OperatorRevoke_KillsTheTokens_IsIdempotent_AndIsInTheFeedWithTheOperator()
    {
        using var client = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var tail = await FirstEventCursorAsync(client);
        var begun = await client.BeginTaskAsync(Request());

        var first = await operators.RevokeLeaseAsync(begun.LeaseId, "suspicious tool use");
        var second = await operators.RevokeLeaseAsync(begun.LeaseId, "suspicious tool use");

        Assert.That(first.Changed, Is.True);
        Assert.That(first.Lease.State, Is.EqualTo("revoked"));
        Assert.That(second.Changed, Is.False, "revoking an ended lease reports it, no error");
        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.False);
        var renew = Assert.ThrowsAsync<RpcException>(() => client.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId }));
        Assert.That(renew!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));

        var events = await ReadEventsAsync(client, tail, 1);
        Assert.That(events[0].LeaseId, Is.EqualTo(begun.LeaseId));
        Assert.That(events[0].Cause, Is.EqualTo("revoked"));
        Assert.That(events[0].Actor, Is.EqualTo(ProductionBroker.Operator));
        Assert.That(events[0].Reason, Is.EqualTo("suspicious tool use"));
    }

    [Test]
    public async Task RevokeTask_FindsTheLeaseByAgentAndTask()
    {
        using var client = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var request = Request();
        var begun = await client.BeginTaskAsync(request);

        var revoked = await operators.RevokeTaskAsync("triage-agent", request.TaskId, "task cancelled by owner");

        Assert.That(revoked.Lease.LeaseId, Is.EqualTo(begun.LeaseId));
        var missing = Assert.ThrowsAsync<RpcException>(() => operators.RevokeTaskAsync("triage-agent", "no-such-task", "x"));
        Assert.That(missing!.StatusCode, Is.EqualTo(StatusCode.NotFound));
    }

    [Test]
    public async Task Quarantine_RevokesOpenLeases_BlocksNewTasks_UntilRelease()
    {
        using var client = Broker.ClientFor(Billing);
        using var operators = Broker.OperatorClient();
        var open = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "q-" + Guid.NewGuid().ToString("N"), Scopes = { "invoices:read" } });

        var quarantined = await operators.QuarantineAgentAsync("billing-agent", "exfiltration alert");
        var blocked = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "q2-" + Guid.NewGuid().ToString("N"), Scopes = { "invoices:read" } }));
        var again = await operators.QuarantineAgentAsync("billing-agent", "exfiltration alert");

        Assert.That(quarantined.LeasesRevoked, Is.EqualTo(1));
        Assert.That(again.LeasesRevoked, Is.Zero);
        Assert.That(again.QuarantinedSince, Is.EqualTo(quarantined.QuarantinedSince), "a second quarantine keeps the first time");
        Assert.That((await client.IntrospectAsync(open.AccessToken)).Active, Is.False);
        Assert.That(blocked!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(blocked.GetDetail<ErrorInfo>()!.Metadata["rules"], Is.EqualTo("agent.quarantined"));

        Assert.That((await operators.ReleaseAgentAsync("billing-agent")).Released, Is.True);
        Assert.That((await operators.ReleaseAgentAsync("billing-agent")).Released, Is.False);
        var after = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "q3-" + Guid.NewGuid().ToString("N"), Scopes = { "invoices:read" } });
        Assert.That(after.AccessToken, Is.Not.Empty);
        await client.CompleteTaskAsync(after.LeaseId);
    }

    [Test]
    public async Task Quotas_ConcurrentLeasesAndTaskRate_AreResourceExhaustedWithARetryHint()
    {
        await using var broker = new ProductionBroker();
        using var redis = RedisServer.Start();
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Billing);
        BeginTaskRequest Next() => new() { TaskId = "quota-" + Guid.NewGuid().ToString("N"), Scopes = { "invoices:read" } };

        var first = await client.BeginTaskAsync(Next());
        var second = await client.BeginTaskAsync(Next());
        var concurrent = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Next()));
        Assert.That(concurrent!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
        Assert.That(concurrent.GetDetail<ErrorInfo>()!.Metadata["rules"], Is.EqualTo("lease.quota.concurrent"));

        await client.CompleteTaskAsync(first.LeaseId);
        var third = await client.BeginTaskAsync(Next());
        await client.CompleteTaskAsync(second.LeaseId);
        await client.CompleteTaskAsync(third.LeaseId);
        var rate = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Next()));
        Assert.That(rate!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
        Assert.That(rate.GetDetail<ErrorInfo>()!.Metadata["rules"], Is.EqualTo("lease.quota.rate"));
        var retry = rate.GetDetail<RetryInfo>();
        Assert.That(retry, Is.Not.Null);
        Assert.That(retry!.RetryDelay.ToTimeSpan(), Is.GreaterThan(TimeSpan.Zero).And.LessThanOrEqualTo(TimeSpan.FromMinutes(1)));
    }

    [Test]
    public async Task WatchRevocations_DisconnectedValidatorResumesAndSeesEveryRevocationOnce()
    {
        using var client = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        var cursor = await FirstEventCursorAsync(client);
        var beforeDisconnect = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var begun = await client.BeginTaskAsync(Request());
            await client.CompleteTaskAsync(begun.LeaseId);
            beforeDisconnect.Add(begun.LeaseId);
        }

        var seen = await ReadEventsAsync(client, cursor, 3);
        Assert.That(seen.Select(e => e.LeaseId), Is.EqualTo(beforeDisconnect));
        Assert.That(seen.Select(e => e.Cause), Is.All.EqualTo("completed"));

        // Disconnected: more revocations happen meanwhile.
        var whileAway = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var begun = await client.BeginTaskAsync(Request());
            await operators.RevokeLeaseAsync(begun.LeaseId, "batch revoke");
            whileAway.Add(begun.LeaseId);
        }

        var resumed = await ReadEventsAsync(client, seen[^1].Cursor, 5);
        Assert.That(resumed.Select(e => e.LeaseId), Is.EqualTo(whileAway), "exactly the events after the cursor, none missed, none repeated");
    }

    [Test]
    public async Task WatchRevocations_LiveEventArrivesQuickly()
    {
        using var client = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var begun = await client.BeginTaskAsync(Request());
        var stream = client.WatchRevocationsAsync(fromNow: true, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        // The stream first says it has caught up (a heartbeat right after the empty replay): the watcher is live.
        Assert.That(await stream.MoveNextAsync(), Is.True);
        Assert.That(stream.Current.Kind, Is.EqualTo("heartbeat"));
        var next = stream.MoveNextAsync().AsTask();

        var watch = Stopwatch.StartNew();
        await operators.RevokeLeaseAsync(begun.LeaseId, "live");
        Assert.That(await next, Is.True);
        watch.Stop();

        Assert.That(stream.Current.LeaseId, Is.EqualTo(begun.LeaseId));
        // A generous bound for a busy shared machine (the latency itself is measured in bench/, not here).
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)), "near real time (this replica wakes its watchers at once; others poll every 50 ms)");
        await cts.CancelAsync();
        await stream.DisposeAsync();
    }

    [Test]
    public async Task WatchRevocations_CursorOlderThanTheRetainedLog_IsFailedPreconditionWithCursorExpired()
    {
        await using var broker = new ProductionBroker();
        using var redis = RedisServer.Start();
        // Events are kept by time (issue 15 item 12): a 1 s retention, so the test can outlive it.
        await broker.StartAsync(redis.ConnectionString, "--CredBroker:Leases:RevocationRetention=00:00:01");
        using var client = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        BeginTaskRequest Next() => new() { TaskId = "trim-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } };

        var first = await client.BeginTaskAsync(Next());
        await client.CompleteTaskAsync(first.LeaseId);
        var second = await client.BeginTaskAsync(Next());
        await client.CompleteTaskAsync(second.LeaseId);
        var appended = Stopwatch.StartNew();
        // A reader that saw the first event only: the second is what it would miss.
        var cursor = (await ReadEventsAsync(client, "", 1))[0].Cursor;
        while (appended.Elapsed < TimeSpan.FromSeconds(1.5))
        {
            await Task.Delay(50);
        }

        // One agent lives in one shard: the next event there drops both earlier ones, now past the retention.
        var next = await client.BeginTaskAsync(Next());
        await operators.RevokeLeaseAsync(next.LeaseId, "trim");

        var error = Assert.ThrowsAsync<RpcException>(() => ReadEventsAsync(client, cursor, 1));
        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Assert.That(error.GetDetail<ErrorInfo>()!.Reason, Is.EqualTo("CURSOR_EXPIRED"));
        Assert.That(error.Detail, Does.Contain("resync"));
        Assert.That(await ReadEventsAsync(client, "", 1), Has.Count.EqualTo(1), "starting over without a cursor works");
    }

    [Test]
    public async Task WatchRevocations_QuietStream_SendsHeartbeatsWithItsCursor()
    {
        using var client = Broker.ClientFor(Triage);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var watch = Stopwatch.StartNew();

        await using var stream = client.WatchRevocationsAsync(fromNow: true, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.That(await stream.MoveNextAsync(), Is.True);

        Assert.That(stream.Current.Kind, Is.EqualTo("heartbeat"));
        Assert.That(stream.Current.Cursor, Does.StartWith("v1."), "a heartbeat carries where the stream stands");
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        await cts.CancelAsync();
    }

    [TestCase("garbage")]
    [TestCase("v1.1-0")]
    public void WatchRevocations_MalformedCursor_IsInvalidArgument(string cursor)
    {
        using var client = Broker.ClientFor(Triage);
        var error = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in client.WatchRevocationsAsync(cursor))
            {
            }
        });
        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
    }

    [Test]
    public async Task OperatorListener_RefusesAgentsAndUnknownSubjects_AgentListenerRefusesOperators()
    {
        using var asAgent = Broker.OperatorClient(Triage, ProductionBroker.BrokerAudience);
        using var stranger = Broker.OperatorClient("mallory@example.com");
        foreach (var client in new[] { asAgent, stranger })
        {
            var error = Assert.ThrowsAsync<RpcException>(() => client.ListLeasesAsync(new ListLeasesRequest()));
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        }

        using var operatorAsAgent = new Client.CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(ProductionBroker.Operator, audience: ProductionBroker.OperatorAudience));
        var refused = Assert.ThrowsAsync<RpcException>(() => operatorAsAgent.BeginTaskAsync(Request()));
        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
    }

    [Test]
    public void OperatorRevoke_WithoutReason_IsInvalidArgument_UnknownLease_IsNotFound()
    {
        using var operators = Broker.OperatorClient();
        var noReason = Assert.ThrowsAsync<RpcException>(() => operators.RevokeLeaseAsync("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa", ""));
        var unknown = Assert.ThrowsAsync<RpcException>(() => operators.RevokeLeaseAsync("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa", "x"));
        Assert.That(noReason!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(noReason.Detail, Does.Contain("reason is required"));
        Assert.That(unknown!.StatusCode, Is.EqualTo(StatusCode.NotFound));
    }

    [Test]
    public async Task ListLeases_PagesCoverEveryLeaseOnce_AndBadFiltersAreInvalidArgument()
    {
        using var client = Broker.ClientFor(Triage);
        using var operators = Broker.OperatorClient();
        for (var i = 0; i < 7; i++)
        {
            await client.BeginTaskAsync(Request());
        }

        var ids = new List<string>();
        var token = string.Empty;
        do
        {
            var page = await operators.ListLeasesAsync(new ListLeasesRequest { AgentId = "triage-agent", PageSize = 3, PageToken = token });
            ids.AddRange(page.Leases.Select(l => l.LeaseId));
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.That(ids, Is.Unique);
        Assert.That(ids.Count, Is.GreaterThanOrEqualTo(7));
        foreach (var bad in new[] { new ListLeasesRequest { State = "zombie" }, new ListLeasesRequest { PageSize = 501 }, new ListLeasesRequest { PageToken = "nope" }, new ListLeasesRequest { AgentId = "Bad Agent" } })
        {
            var error = Assert.ThrowsAsync<RpcException>(() => operators.ListLeasesAsync(bad));
            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument), bad.ToString());
        }
    }

    /// <summary>The deadline index of the lease's shard (its id carries the shard).</summary>
    internal static string DeadlineIndexOf(string leaseId) => $"cb:{{s{leaseId.Substring(1, 2)}}}:deadlines";

    /// <summary>The cursor at the current tail, so a test reads only the events it causes.</summary>
    private static async Task<string> FirstEventCursorAsync(Client.CredBrokerClient client)
    {
        // A from-now watch gives no cursor until an event; take the tail by reading everything retained instead.
        var cursor = string.Empty;
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
        try
        {
            await foreach (var e in client.WatchRevocationsAsync(cancellationToken: cts.Token))
            {
                cursor = e.Cursor;
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
        }

        return cursor;
    }

    private static async Task<List<RevocationEvent>> ReadEventsAsync(Client.CredBrokerClient client, string cursor, int count)
    {
        var events = new List<RevocationEvent>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var e in client.WatchRevocationsAsync(cursor, cancellationToken: cts.Token))
        {
            if (e.Kind == "heartbeat")
            {
                continue;
            }

            events.Add(e);
            if (events.Count == count)
            {
                break;
            }
        }

        return events;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, DateTimeOffset deadline)
    {
        while (!await condition())
        {
            Assert.That(DateTimeOffset.UtcNow, Is.LessThan(deadline), "condition not met in time");
            await Task.Delay(50);
        }
    }
}
