using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

public sealed class Gauge(string name, string help, string[] labels) : Metric(name, help, "gauge", labels)
{
    private readonly ConcurrentDictionary<string, double> _values = new(StringComparer.Ordinal);

    public void Set(double value, params string[] labelValues) => _values[Key(labelValues)] = value;

    protected override Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        foreach (var (key, value) in _values.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.Append(Name).Append(LabelText(key)).Append(' ').Append(Number(value)).Append('\n');
        }

        return Task.CompletedTask;
    }
}
