using CredBroker.Contracts.V1;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 10: the policy file watcher reloads — and audits — only when the policy file's
/// content changed. A log file written beside it, or the policy file rewritten with the same bytes,
/// produces no reload and no <c>policy.reloaded</c> record.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityPolicyWatcherTests : ProductionBrokerFixture
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private async Task<List<AuditEvent>> ReloadsAsync()
    {
        using var operators = Broker.OperatorClient();
        var events = new List<AuditEvent>();
        await foreach (var record in operators.QueryAuditAsync(new QueryAuditRequest { EventTypes = { "policy.reloaded" } }))
        {
            events.Add(record.Event);
        }

        return events;
    }

    [Test]
    public async Task FilesWrittenBeside_AndSameContentRewrites_CauseNoReloadAndNoAuditRecord()
    {
        var policyFile = Broker.PolicyFile;
        var original = await File.ReadAllTextAsync(policyFile);
        var beside = Path.Combine(Path.GetDirectoryName(policyFile)!, "broker.log");
        var before = await ReloadsAsync();
        try
        {
            // Noise: a log file growing next to the policy file, and the policy rewritten unchanged (a touch).
            for (var i = 0; i < 15; i++)
            {
                await File.AppendAllTextAsync(beside, $"line {i}\n");
                if (i % 5 == 0)
                {
                    await File.WriteAllTextAsync(policyFile, original);
                }

                await Task.Delay(50);
            }

            // A real change, as a marker: once its record is in, every earlier event was handled.
            var changed = original + "\n# a comment changes the content\n";
            await File.WriteAllTextAsync(policyFile, changed);
            var deadline = DateTime.UtcNow + Patience;
            List<AuditEvent> after;
            while ((after = await ReloadsAsync()).Count == before.Count || after.All(e => e.Details["applied"] != "true"))
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the real change was reloaded in time");
                await Task.Delay(100);
            }

            var added = after.Skip(before.Count).ToList();
            Assert.That(added, Has.Count.EqualTo(1), "only the content change was reloaded and audited: " + string.Join(", ", added.Select(e => e.Details["version"])));
            Assert.That(added[0].Details["applied"], Is.EqualTo("true"));
        }
        finally
        {
            await File.WriteAllTextAsync(policyFile, original);
            File.Delete(beside);
        }
    }
}
