namespace CredBroker.Bench.Mint;

/// <summary>Every latency of a window, kept exactly (a 10 s window at 20k calls/s is 200k doubles), for exact percentiles.</summary>
internal sealed class LatencySamples
{
    private readonly List<double> _milliseconds = new(1 << 16);
    private bool _sorted;

    public int Count => _milliseconds.Count;

    public void Add(double milliseconds)
    {
        _milliseconds.Add(milliseconds);
        _sorted = false;
    }

    public void AddRange(LatencySamples other)
    {
        _milliseconds.AddRange(other._milliseconds);
        _sorted = false;
    }

    public double Mean => _milliseconds.Count == 0 ? 0 : _milliseconds.Average();

    /// <summary>The nearest-rank percentile (q in 0..1); 0 when empty.</summary>
    public double Percentile(double q)
    {
        if (_milliseconds.Count == 0)
        {
            return 0;
        }

        if (!_sorted)
        {
            _milliseconds.Sort();
            _sorted = true;
        }

        var rank = (int)Math.Ceiling(q * _milliseconds.Count);
        return _milliseconds[Math.Clamp(rank - 1, 0, _milliseconds.Count - 1)];
    }
}
