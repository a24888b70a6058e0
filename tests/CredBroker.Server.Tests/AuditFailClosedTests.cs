using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using StackExchange.Redis;

namespace CredBroker.Server.Tests;

/// <summary>
/// The audit chain on its own redis-server, so it can fail (or be tampered with) while the lease
/// store stays up: no audit record, no token; tampering shows in VerifyAudit at the right sequence.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class AuditFailClosedTests : SeparateAuditRedisFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static BeginTaskRequest Request() => new() { TaskId = "task-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(2)) };

    [Test]
    public async Task AuditDown_BeginTaskFailsClosed_RevokeIsNotAcknowledged_AndReadyzSaysWhy()
    {
        using var client = Broker.ClientFor(Triage);
        using var op = Broker.OperatorClient();
        using var http = new HttpClient { BaseAddress = Broker.HttpAddress };
        var open = await client.BeginTaskAsync(Request());

        AuditRedis.Kill();

        var mint = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));
        var revoke = Assert.ThrowsAsync<RpcException>(() => op.RevokeLeaseAsync(open.LeaseId, "incident"));
        // /readyz serves the state refreshed in the background: wait for the refresh that saw the audit store go.
        var (ready, body) = await Readyz.UntilAsync(http, (_, b) => b.Contains("\"audit_log\":\"unreachable", StringComparison.Ordinal));

        Assert.That(mint!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        Assert.That(mint.Detail, Does.Contain("audit log is unavailable"));
        Assert.That(revoke!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        Assert.That((int)ready, Is.EqualTo(503));
        Assert.That(body, Does.Contain("\"audit_log\":\"unreachable"));
        Assert.That(body, Does.Contain("\"lease_store\":\"ok\""));
    }

    [Test]
    public async Task AuditBack_TheChainContinuesIntact_AndTheRetriedRevokeIsRecorded()
    {
        using var client = Broker.ClientFor(Triage);
        using var op = Broker.OperatorClient();
        var open = await client.BeginTaskAsync(Request());
        AuditRedis.Kill();
        Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));
        AuditRedis.Restart();

        var retried = await Unavailable.RetryAsync(() => op.RevokeLeaseAsync(open.LeaseId, "incident"));
        var verified = await op.VerifyAuditAsync();

        Assert.That(retried.Lease.State, Is.EqualTo("revoked"));
        Assert.That(verified.Intact, Is.True, verified.Problem);
        var revoked = new List<AuditRecord>();
        await foreach (var r in op.QueryAuditAsync(new QueryAuditRequest { LeaseId = open.LeaseId, EventTypes = { "lease.revoked" } }))
        {
            revoked.Add(r);
        }

        Assert.That(revoked, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task AuditDownWhenALeaseExpires_TheExpiryIsRecordedOnceTheAuditIsBack()
    {
        // Found by the chaos run: the sweeper had claimed the lease (that is the expiry) when the audit append failed,
        // and nothing ever recorded lease.expired for it.
        using var client = Broker.ClientFor(Triage);
        using var op = Broker.OperatorClient();
        var request = Request();
        request.Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(1));
        var open = await client.BeginTaskAsync(request);
        AuditRedis.Kill();

        // Wait until a sweeper claimed it (it left the shard's deadline index: cb:{sNN}:deadlines, docs/lease-store.md)
        // and so tried, and failed, to record the expiry.
        using (var raw = await ConnectionMultiplexer.ConnectAsync(LeaseRedis.ConnectionString))
        {
            var index = $"cb:{{s{Core.Leases.LeaseIds.ShardOf("triage-agent"):x2}}}:deadlines";
            var until = DateTime.UtcNow.AddSeconds(30);
            while (await raw.GetDatabase().SortedSetScoreAsync(index, open.LeaseId) is not null)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(until), "no sweeper claimed the expired lease");
                await Task.Delay(50);
            }
        }

        AuditRedis.Restart();
        var expired = new List<AuditRecord>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (expired.Count == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            try
            {
                await foreach (var r in op.QueryAuditAsync(new QueryAuditRequest { LeaseId = open.LeaseId, EventTypes = { "lease.expired" } }))
                {
                    expired.Add(r);
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
            }
        }

        Assert.That(expired, Is.Not.Empty, "the expiry claimed while the audit log was down was never recorded");
        Assert.That(expired[0].Event.Details["deadline"], Does.StartWith(open.LeaseDeadline.ToDateTimeOffset().ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That((await op.VerifyAuditAsync()).Intact, Is.True);
    }

    [Test]
    public async Task RecordDeletedFromTheStream_VerifyAuditReportsItsSequence()
    {
        using var client = Broker.ClientFor(Triage);
        using var op = Broker.OperatorClient();
        for (var i = 0; i < 5; i++)
        {
            await client.BeginTaskAsync(Request());
        }

        using (var raw = await ConnectionMultiplexer.ConnectAsync(AuditRedis.ConnectionString))
        {
            var entries = (RedisResult[])(await raw.GetDatabase().ExecuteAsync("XRANGE", "cb:{audit}:log", "-", "+"))!;
            var third = (RedisResult[])entries[2]!;
            await raw.GetDatabase().ExecuteAsync("XDEL", "cb:{audit}:log", (string)third[0]!);
        }

        var result = await op.VerifyAuditAsync();

        Assert.That((result.Intact, result.FirstBrokenSequence), Is.EqualTo((false, 3L)));
        Assert.That(result.Problem, Does.Contain("deleted"));
    }
}
