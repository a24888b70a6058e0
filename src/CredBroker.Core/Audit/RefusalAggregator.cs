using System.Globalization;
using CredBroker.Core.Broker;

namespace CredBroker.Core.Audit;

/// <summary>
/// Keeps floods of refusals (<c>token.denied</c>, <c>operator.auth_failed</c>) from flooding the
/// audit chain without ever losing the fact that they happened. Per source (the peer address for a
/// refused operator credential; the caller, agent, operation, refusal kind and rules for a denial)
/// and window, the first refusal is appended at once, exactly as without aggregation; the rest are
/// counted, and when the window has closed one summary record of the same type says how many there
/// were, when, and what the last one was (details <c>aggregated</c>, <c>window_start</c>,
/// <c>window_end</c>, <c>first_sequence</c>). Every other event passes straight through.
/// <see cref="FlushAsync"/> writes the summaries of closed windows; the host calls it periodically
/// and when it stops. A summary that cannot be appended is kept and retried.
/// </summary>
public sealed class RefusalAggregator(IAuditEvents inner, TimeProvider time, TimeSpan window, IRefusalObserver? observer = null, int maxSources = RefusalAggregator.DefaultMaxSources)
    : IAuditEvents
{
    public const int DefaultMaxSources = 10_000;
    private readonly object _gate = new();
    private readonly Dictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    public TimeSpan Window => window;

    /// <summary>Refusals counted in open windows, not yet written as a summary.</summary>
    public long Pending
    {
        get
        {
            lock (_gate)
            {
                return _buckets.Values.Sum(b => b.Suppressed);
            }
        }
    }

    public async Task<AuditRecord> RaiseAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        if (auditEvent.Type is not (AuditEventType.TokenDenied or AuditEventType.OperatorAuthFailed))
        {
            return await inner.RaiseAsync(auditEvent, cancellationToken);
        }

        var now = time.GetUtcNow();
        var key = Key(auditEvent);
        Bucket? closed = null;
        lock (_gate)
        {
            if (!_buckets.ContainsKey(key) && _buckets.Count >= maxSources)
            {
                // Too many distinct sources at once (e.g. many spoofed peers): one bucket per type for the rest.
                key = "overflow|" + auditEvent.Type.ToWire();
            }

            if (_buckets.TryGetValue(key, out var bucket))
            {
                if (now < bucket.Start + window)
                {
                    bucket.Suppressed++;
                    bucket.Last = auditEvent;
                    observer?.Suppressed(auditEvent);
                    return bucket.First;
                }

                _buckets.Remove(key);
                closed = bucket.Suppressed > 0 ? bucket : null;
            }
        }

        if (closed is not null)
        {
            await SummarizeAsync(key, closed, now, cancellationToken);
        }

        var record = await inner.RaiseAsync(auditEvent, cancellationToken);
        lock (_gate)
        {
            _buckets.TryAdd(key, new Bucket(now, record, auditEvent));
        }

        return record;
    }

    /// <summary>Writes a summary for every window that has closed (and forgets windows without suppressed refusals).</summary>
    /// <param name="all">Also the windows still open (when the host stops).</param>
    public async Task FlushAsync(bool all, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        List<(string Key, Bucket Bucket)> closed;
        lock (_gate)
        {
            closed = _buckets.Where(p => all || now >= p.Value.Start + window).Select(p => (p.Key, p.Value)).ToList();
            foreach (var (key, _) in closed)
            {
                _buckets.Remove(key);
            }
        }

        foreach (var (key, bucket) in closed.Where(c => c.Bucket.Suppressed > 0))
        {
            await SummarizeAsync(key, bucket, now, cancellationToken);
        }
    }

    private async Task SummarizeAsync(string key, Bucket bucket, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var last = bucket.Last;
        var end = bucket.Start + window < now ? bucket.Start + window : now;
        var summary = last with
        {
            Time = now,
            Reason = string.Create(CultureInfo.InvariantCulture,
                $"{bucket.Suppressed} more refusal(s) like record {bucket.First.Sequence} from the same source between {bucket.Start:O} and {end:O} (aggregated); the last: {last.Reason}"),
            Details = new Dictionary<string, string>(last.Details, StringComparer.Ordinal)
            {
                ["aggregated"] = bucket.Suppressed.ToString(CultureInfo.InvariantCulture),
                ["window_start"] = bucket.Start.ToString("O", CultureInfo.InvariantCulture),
                ["window_end"] = end.ToString("O", CultureInfo.InvariantCulture),
                ["first_sequence"] = bucket.First.Sequence.ToString(CultureInfo.InvariantCulture),
            },
        };
        try
        {
            await inner.RaiseAsync(summary, cancellationToken);
        }
        catch (Exception e) when (e is BrokerException or OperationCanceledException)
        {
            // Never lose the count: put it back (merged with any window opened since) and retry on the next flush.
            lock (_gate)
            {
                if (_buckets.TryGetValue(key, out var current))
                {
                    current.Suppressed += bucket.Suppressed;
                    current.Start = bucket.Start < current.Start ? bucket.Start : current.Start;
                }
                else
                {
                    _buckets[key] = bucket;
                }
            }

            throw;
        }
    }

    /// <summary>The source a refusal is aggregated under.</summary>
    internal static string Key(AuditEvent e) => e.Type == AuditEventType.OperatorAuthFailed
        ? string.Join('|', "op", PeerAddress(e.Caller), e.Details.GetValueOrDefault("status") ?? "")
        : string.Join('|', "deny", e.Caller, e.AgentId, e.Details.GetValueOrDefault("operation") ?? "", e.Details.GetValueOrDefault("refusal") ?? "", string.Join(',', e.RuleIds));

    /// <summary>The address without the port (<c>127.0.0.1:51234</c> → <c>127.0.0.1</c>; IPv6 keeps its colons).</summary>
    internal static string PeerAddress(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        return colon > 0 && endpoint[(colon + 1)..].All(char.IsAsciiDigit) && endpoint.Length > colon + 1 ? endpoint[..colon] : endpoint;
    }

    private sealed class Bucket(DateTimeOffset start, AuditRecord first, AuditEvent last)
    {
        public DateTimeOffset Start { get; set; } = start;

        public AuditRecord First { get; } = first;

        public AuditEvent Last { get; set; } = last;

        public long Suppressed { get; set; }
    }
}

/// <summary>Told about every refusal the aggregator counted instead of appending (metrics count every refusal). Must not throw or block.</summary>
public interface IRefusalObserver
{
    void Suppressed(AuditEvent auditEvent);
}
