using System.Security.Cryptography;
using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Core.Broker;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

[TestFixture]
public sealed class RefusalAggregatorTests
{
    private readonly ManualTimeProvider _time = new(DateTimeOffset.UtcNow);

    private static AuditEvent AuthFailed(string peer, DateTimeOffset time) => new()
    {
        Type = AuditEventType.OperatorAuthFailed, Time = time, Caller = peer, Reason = "bad credential",
        Details = new Dictionary<string, string> { ["method"] = "/credbroker.v1.Operator/ListLeases", ["status"] = "Unauthenticated" },
    };

    [Test]
    public async Task FirstRefusalIsAppendedAtOnce_TheRestBecomeOneSummaryWhenTheWindowCloses()
    {
        var log = new InMemoryAuditLog(new HmacAuditSigner(RandomNumberGenerator.GetBytes(32)));
        var refusals = new RefusalAggregator(new AuditService(log), _time, TimeSpan.FromSeconds(10));

        for (var i = 0; i < 50; i++)
        {
            await refusals.RaiseAsync(AuthFailed("10.0.0.1:" + (40000 + i), _time.GetUtcNow()), default);
        }

        await refusals.RaiseAsync(AuthFailed("10.0.0.2:1234", _time.GetUtcNow()), default);
        await refusals.FlushAsync(all: false, default);
        Assert.That((await log.GetStateAsync(default)).HeadSequence, Is.EqualTo(2), "one record per source while the window is open");
        Assert.That(refusals.Pending, Is.EqualTo(49));

        _time.Advance(TimeSpan.FromSeconds(11));
        await refusals.FlushAsync(all: false, default);

        var records = await log.ReadAsync(null, 100, default);
        Assert.That(records, Has.Count.EqualTo(3));
        var summary = records[2].TryEvent()!;
        Assert.That((summary.Type, summary.Details["aggregated"], summary.Details["first_sequence"]), Is.EqualTo((AuditEventType.OperatorAuthFailed, "49", "1")));
        Assert.That(summary.Caller, Is.EqualTo("10.0.0.1:40049"));
        Assert.That(refusals.Pending, Is.Zero);
    }

    [Test]
    public async Task OtherEventsPassThrough_AndASummaryThatCannotBeAppendedIsKept()
    {
        var log = new FailingLog(new InMemoryAuditLog(new HmacAuditSigner(RandomNumberGenerator.GetBytes(32))));
        var refusals = new RefusalAggregator(new AuditService(log), _time, TimeSpan.FromSeconds(10));
        await refusals.RaiseAsync(new AuditEvent { Type = AuditEventType.PolicyReloaded, Time = _time.GetUtcNow() }, default);
        await refusals.RaiseAsync(new AuditEvent { Type = AuditEventType.PolicyReloaded, Time = _time.GetUtcNow() }, default);
        await refusals.RaiseAsync(AuthFailed("10.0.0.1:1", _time.GetUtcNow()), default);
        await refusals.RaiseAsync(AuthFailed("10.0.0.1:2", _time.GetUtcNow()), default);

        _time.Advance(TimeSpan.FromSeconds(11));
        log.Failing = true;
        Assert.ThrowsAsync<BrokerException>(() => refusals.FlushAsync(all: false, default));
        Assert.That(refusals.Pending, Is.EqualTo(1), "the count is kept for the next attempt");
        log.Failing = false;
        await refusals.FlushAsync(all: false, default);

        Assert.That((await log.GetStateAsync(default)).HeadSequence, Is.EqualTo(4));
        Assert.That(refusals.Pending, Is.Zero);
    }

    [Test]
    public void PeerAddress_DropsThePortOnly()
    {
        Assert.That(RefusalAggregator.PeerAddress("127.0.0.1:51234"), Is.EqualTo("127.0.0.1"));
        Assert.That(RefusalAggregator.PeerAddress("::1:51234"), Is.EqualTo("::1"));
        Assert.That(RefusalAggregator.PeerAddress("unknown"), Is.EqualTo("unknown"));
    }

    private sealed class FailingLog(IAuditLog inner) : IAuditLog
    {
        public bool Failing { get; set; }

        public Task<AuditRecord> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken) =>
            Failing ? throw new AuditUnavailableException("down") : inner.AppendAsync(auditEvent, cancellationToken);

        public Task<IReadOnlyList<AuditRecord>> ReadAsync(string? afterPosition, int limit, CancellationToken cancellationToken) => inner.ReadAsync(afterPosition, limit, cancellationToken);

        public Task<AuditLogState> GetStateAsync(CancellationToken cancellationToken) => inner.GetStateAsync(cancellationToken);

        public Task<IReadOnlyList<AuditCheckpoint>> ReadCheckpointsAsync(CancellationToken cancellationToken) => inner.ReadCheckpointsAsync(cancellationToken);
    }
}
