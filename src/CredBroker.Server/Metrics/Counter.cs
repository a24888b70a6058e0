using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

public sealed class Counter(string name, string help, string[] labels) : Metric(name, help, "counter", labels)
{
    private readonly ConcurrentDictionary<string, StrongBox<double>> _cells = new(StringComparer.Ordinal);

    public void Inc(params string[] labelValues) => Add(1, labelValues);

    public void Add(double amount, params string[] labelValues)
    {
        var cell = _cells.GetOrAdd(Key(labelValues), _ => new StrongBox<double>());
        lock (cell)
        {
            cell.Value += amount;
        }
    }

    /// <summary>The current value (tests and status pages).</summary>
    public double Value(params string[] labelValues) => _cells.TryGetValue(Key(labelValues), out var cell) ? cell.Value : 0;

    protected override Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        foreach (var (key, cell) in _cells.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.Append(Name).Append(LabelText(key)).Append(' ').Append(Number(cell.Value)).Append('\n');
        }

        return Task.CompletedTask;
    }
}
