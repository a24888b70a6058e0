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
