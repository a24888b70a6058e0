namespace CredBroker.Bench.Tests;

/// <summary>
/// The hot-agent scenario, briefly, on a real 3-master cluster: it measures every layout, puts the one hot
/// agent's lease work on one master only, and names the audit chain's master once. No rate is asserted
/// (the machine is shared); only where the work went, which Redis's own counters say exactly.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class HotAgentBenchmarksTests
{
    [Test]
    public async Task HotAgent_PutsOneAgentsLeaseWorkOnOneMaster_AndReportsEveryLayout()
    {
        var report = await HotAgentBenchmarks.RunAsync(concurrency: 4, seconds: 1, rounds: 1, TextWriter.Null);
        var lines = report.Split('\n');
        var rows = lines.Where(l => l.StartsWith("| (", StringComparison.Ordinal)).Select(l => l.Split('|').Select(c => c.Trim()).ToArray()).ToList();

        Assert.That(rows.Select(r => (r[1][..3], r[2])), Is.EquivalentTo(new[] { ("(a)", "on"), ("(b)", "on"), ("(c)", "on"), ("(a)", "off"), ("(b)", "off"), ("(c)", "off") }));
        Assert.That(lines.Count(l => l.StartsWith("| M", StringComparison.Ordinal) && l.Contains("**here**", StringComparison.Ordinal)), Is.EqualTo(1), "one master holds the audit chain");

        // Without audit records, the hot agent's mints are lease scripts on its master only; pinned and spread agents use all three.
        var masterCells = Enumerable.Range(8, 3);
        var hot = rows.Single(r => r[1].StartsWith("(a)", StringComparison.Ordinal) && r[2] == "off");
        Assert.That(masterCells.Select(i => hot[i]).Count(c => c.StartsWith("100% /", StringComparison.Ordinal)), Is.EqualTo(1), string.Join(" | ", hot));
        Assert.That(masterCells.Select(i => hot[i]).Count(c => c.StartsWith("0% /", StringComparison.Ordinal)), Is.EqualTo(2), string.Join(" | ", hot));
        foreach (var spread in rows.Where(r => !r[1].StartsWith("(a)", StringComparison.Ordinal)))
        {
            Assert.That(masterCells.Select(i => spread[i]), Has.None.StartsWith("0% /"), string.Join(" | ", spread));
        }

        Assert.That(report, Does.Contain("The audit chain alone"));
    }
}
