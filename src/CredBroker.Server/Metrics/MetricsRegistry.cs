using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

/// <summary>
/// A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms
/// with labels, rendered on scrape. Hand-written because the Prometheus exporter package cannot be
/// restored here; keep label sets small and bounded (method names, status codes, rule ids).
/// </summary>
public sealed class MetricsRegistry
{
    private readonly List<Metric> _metrics = [];

    public Counter Counter(string name, string help, params string[] labels) => Add(new Counter(name, help, labels));

    public Gauge Gauge(string name, string help, params string[] labels) => Add(new Gauge(name, help, labels));

    public Histogram Histogram(string name, string help, double[] buckets, params string[] labels) => Add(new Histogram(name, help, buckets, labels));

    /// <summary>A gauge read at scrape time (e.g. from the store); a failed read leaves the sample out.</summary>
    public void GaugeAsync(string name, string help, Func<CancellationToken, Task<double>> read) => Add(new ScrapeGauge(name, help, read));

    public async Task<string> RenderAsync(CancellationToken cancellationToken)
    {
        var text = new StringBuilder(4096);
        foreach (var metric in _metrics)
        {
            await metric.RenderAsync(text, cancellationToken);
        }

        return text.ToString();
    }

    private T Add<T>(T metric)
        where T : Metric
    {
        lock (_metrics)
        {
            if (_metrics.Any(m => m.Name == metric.Name))
            {
                throw new InvalidOperationException($"Metric {metric.Name} is registered twice.");
            }

            _metrics.Add(metric);
        }

        return metric;
    }
}

public abstract class Metric(string name, string help, string type, string[] labels)
{
    public string Name { get; } = name;

    protected string[] Labels { get; } = labels;

    internal async Task RenderAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        text.Append("# HELP ").Append(Name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');
        await RenderSamplesAsync(text, cancellationToken);
    }

    protected abstract Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken);

    protected string Key(string[] values)
    {
        if (values.Length != Labels.Length)
        {
            throw new ArgumentException($"{Name} takes labels ({string.Join(", ", Labels)}).", nameof(values));
        }

        return string.Join('\u001f', values);
    }

    protected string LabelText(string key, string? extraName = null, string? extraValue = null)
    {
        var values = Labels.Length == 0 ? [] : key.Split('\u001f');
        var pairs = Labels.Select((l, i) => $"{l}=\"{Escape(values[i])}\"").ToList();
        if (extraName is not null)
        {
            pairs.Add($"{extraName}=\"{Escape(extraValue!)}\"");
        }

        return pairs.Count == 0 ? "" : "{" + string.Join(',', pairs) + "}";
    }

    protected static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}

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

internal sealed class ScrapeGauge(string name, string help, Func<CancellationToken, Task<double>> read) : Metric(name, help, "gauge", [])
{
    protected override async Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        try
        {
            text.Append(Name).Append(' ').Append(Number(await read(cancellationToken))).Append('\n');
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The sample is absent; /readyz says why.
        }
    }
}

public sealed class Histogram : Metric
{
    private readonly double[] _buckets;
    private readonly ConcurrentDictionary<string, Cell> _cells = new(StringComparer.Ordinal);

    public Histogram(string name, string help, double[] buckets, string[] labels)
        : base(name, help, "histogram", labels)
    {
        if (buckets.Length == 0 || buckets.Zip(buckets.Skip(1)).Any(p => p.First >= p.Second))
        {
            throw new ArgumentException("Buckets must be non-empty and strictly increasing.", nameof(buckets));
        }

        _buckets = buckets;
    }

    /// <summary>Seconds from 100 µs to 10 s: RPCs and store round trips.</summary>
    public static double[] LatencyBuckets { get; } = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public void Observe(double value, params string[] labelValues)
    {
        var cell = _cells.GetOrAdd(Key(labelValues), _ => new Cell(_buckets.Length));
        lock (cell)
        {
            var i = Array.FindIndex(_buckets, b => value <= b);
            if (i >= 0)
            {
                cell.Counts[i]++;
            }

            cell.Count++;
            cell.Sum += value;
        }
    }

    /// <summary>Observations so far (tests).</summary>
    public long Count(params string[] labelValues) => _cells.TryGetValue(Key(labelValues), out var cell) ? cell.Count : 0;

    protected override Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        foreach (var (key, cell) in _cells.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            long[] counts;
            long count;
            double sum;
            lock (cell)
            {
                (counts, count, sum) = (cell.Counts.ToArray(), cell.Count, cell.Sum);
            }

            long cumulative = 0;
            for (var i = 0; i < _buckets.Length; i++)
            {
                cumulative += counts[i];
                text.Append(Name).Append("_bucket").Append(LabelText(key, "le", Number(_buckets[i]))).Append(' ').Append(cumulative).Append('\n');
            }

            text.Append(Name).Append("_bucket").Append(LabelText(key, "le", "+Inf")).Append(' ').Append(count).Append('\n');
            text.Append(Name).Append("_sum").Append(LabelText(key)).Append(' ').Append(Number(sum)).Append('\n');
            text.Append(Name).Append("_count").Append(LabelText(key)).Append(' ').Append(count).Append('\n');
        }

        return Task.CompletedTask;
    }

    private sealed class Cell(int buckets)
    {
        public long[] Counts { get; } = new long[buckets];

        public long Count { get; set; }

        public double Sum { get; set; }
    }
}
