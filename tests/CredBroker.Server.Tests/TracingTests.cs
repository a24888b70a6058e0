using System.Diagnostics;
using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Server.Metrics;

namespace CredBroker.Server.Tests;

/// <summary>Store and audit-log round trips are traced as Activities on the broker's source when a tracer listens.</summary>
[TestFixture]
[NonParallelizable] // an ActivityListener sees every source in the process
public sealed class TracingTests
{
    [Test]
    public async Task EveryAuditLogCall_IsAnActivity()
    {
        var seen = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == BrokerMetrics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (seen) { seen.Add(activity); } },
        };
        ActivitySource.AddActivityListener(listener);
        var log = new TracedAuditLog(new InMemoryAuditLog(new HmacAuditSigner(new byte[32])));

        await log.AppendAsync(new AuditEvent { Type = AuditEventType.TokenMinted, Time = DateTimeOffset.UtcNow }, CancellationToken.None);
        await log.ReadAsync(null, 10, CancellationToken.None);
        await log.GetStateAsync(CancellationToken.None);
        await log.ReadCheckpointsAsync(CancellationToken.None);

        lock (seen)
        {
            Assert.That(seen.Select(a => a.OperationName), Is.SupersetOf(new[] { "audit.append", "audit.read", "audit.state", "audit.checkpoints" }));
        }
    }
}
