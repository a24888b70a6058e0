using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

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
