using System.Text;
using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Server.Http;

/// <summary>
/// /readyz and the gRPC health service: ready only when a token could be issued right now — the
/// lease store and the audit log answer a real round trip, the current signing key signs, and a
/// policy (agent definitions) is loaded. Each check reports its own result.
/// </summary>
/// <param name="clockProblem">Why the broker's clock cannot be trusted yet (null when it can): then a "clock" check fails.</param>
public sealed class Readiness(ILeaseStore store, IAuditLog audit, ISigningKeys keys, Func<AgentCatalog> agents, Func<string?>? clockProblem = null)
{
    private static readonly byte[] Probe = Encoding.ASCII.GetBytes("credbroker readiness probe");

    public async Task<(bool Ready, IReadOnlyDictionary<string, string> Checks)> CheckAsync(CancellationToken cancellationToken)
    {
        // Both round trips at once: each is bounded by the Redis command timeout, so a stopped Redis
        // answers "not ready" within one timeout, not two.
        var store = StoreAsync(cancellationToken);
        var audit = AuditAsync(cancellationToken);
        var checks = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["lease_store"] = await store,
            ["audit_log"] = await audit,
            ["signing_key"] = SigningKey(),
            ["policy"] = agents().All.Count > 0 ? "ok" : "no agent definitions loaded",
        };
        if (clockProblem?.Invoke() is { } clock)
        {
            checks["clock"] = clock;
        }

        // A degraded lease store (some shards lost) still serves every other agent: ready.
        return (checks.All(c => c.Value == "ok" || (c.Key == "lease_store" && c.Value.StartsWith("degraded", StringComparison.Ordinal))), checks);
    }

    /// <summary>One well-formed, unknown lease id in each shard (the readiness probes).</summary>
    private static readonly string[] ShardProbes = BuildShardProbes();

    /// <summary>
    /// A real round trip to every shard of the store (an unknown, well-formed id in each), so a dead Redis
    /// shows as not ready. On a Redis Cluster that lost one master, only that master's shards fail: the
    /// check names them as "degraded" and the broker stays ready (the other agents are served; calls for
    /// the lost shards answer UNAVAILABLE). Taking every replica out of service for a partial loss would
    /// turn it into a total one. No shard answering is "unreachable": not ready.
    /// </summary>
    private async Task<string> StoreAsync(CancellationToken cancellationToken)
    {
        var probes = ShardProbes.Select(async id =>
        {
            try
            {
                await store.GetAsync(id, cancellationToken);
                return null;
            }
            catch (StoreUnavailableException e)
            {
                return e.Message;
            }
        }).ToList();
        var errors = await Task.WhenAll(probes);
        var down = Enumerable.Range(0, errors.Length).Where(shard => errors[shard] is not null).ToList();
        if (down.Count == 0)
        {
            return "ok";
        }

        var reason = errors[down[0]];
        return down.Count == errors.Length
            ? "unreachable: " + reason
            : $"degraded: shards {string.Join(",", down.Select(s => s.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)))} of {errors.Length} unreachable "
                + $"(their agents' calls answer UNAVAILABLE): {reason}";
    }

    private static string[] BuildShardProbes()
    {
        var probes = new string[LeaseIds.ShardCount];
        for (var n = 0; probes.Any(p => p is null); n++)
        {
            var agent = "readiness-probe-" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            probes[LeaseIds.ShardOf(agent)] ??= LeaseIds.For(agent, "readiness-probe");
        }

        return probes;
    }

    private async Task<string> AuditAsync(CancellationToken cancellationToken)
    {
        try
        {
            await audit.GetStateAsync(cancellationToken);
            return "ok";
        }
        catch (AuditUnavailableException e)
        {
            return "unreachable: " + e.Message;
        }
    }

    private string SigningKey()
    {
        try
        {
            var key = keys.Current;
            return key.Verify(Probe, key.Sign(Probe)) ? "ok" : "the current key does not verify its own signature";
        }
        catch (BrokerException e)
        {
            // No key to sign with right now (schedule not loaded yet, or the scheduled key is not mounted here).
            return "unavailable: " + e.Message;
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or InvalidOperationException or ObjectDisposedException)
        {
            return "unusable: " + e.GetType().Name;
        }
    }
}

/// <summary>
/// The readiness result as last computed in the background (the gRPC health refresher runs
/// <see cref="RefreshAsync"/> every second): <c>/readyz</c> serves it without a Redis round trip, so
/// unauthenticated probes cannot load the store. A result older than <see cref="StaleAfter"/> (a check
/// hanging on a Redis that stopped answering) counts as not ready, so a probe still sees 503 within
/// about two seconds of Redis going away.
/// </summary>
public sealed class CachedReadiness(Readiness readiness, TimeProvider time)
{
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(2);

    private readonly long _started = time.GetTimestamp();
    private Snapshot? _last;
    private volatile bool _everReady;

    /// <summary>Runs the checks (Redis round trips) and keeps the result; returns whether the broker is ready.</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        var (ready, checks) = await readiness.CheckAsync(cancellationToken);
        Volatile.Write(ref _last, new Snapshot(ready, checks, time.GetUtcNow()));
        if (ready)
        {
            _everReady = true;
        }

        return ready;
    }

    /// <summary>
    /// Why the start is stuck: null while the broker has been ready once, or has run less than <paramref name="grace"/>
    /// (zero: never stuck); otherwise the reason /healthz gives for failing, so the orchestrator restarts the replica.
    /// </summary>
    public string? StartupOverdue(TimeSpan grace)
    {
        if (_everReady || grace <= TimeSpan.Zero)
        {
            return null;
        }

        var running = time.GetElapsedTime(_started);
        return running < grace
            ? null
            : $"not ready once in the {grace.TotalSeconds:0} s since start (CredBroker:Health:StartupGrace): restart this replica";
    }

    /// <summary>The cached result (no I/O): not ready before the first check completed or when the last one is stale.</summary>
    public (bool Ready, IReadOnlyDictionary<string, string> Checks) Current()
    {
        var last = Volatile.Read(ref _last);
        if (last is null)
        {
            return (false, new Dictionary<string, string>(StringComparer.Ordinal) { ["readiness"] = "starting: no check has completed yet" });
        }

        var age = time.GetUtcNow() - last.At;
        if (age <= StaleAfter)
        {
            return (last.Ready, last.Checks);
        }

        var checks = new Dictionary<string, string>(last.Checks, StringComparer.Ordinal)
        {
            ["readiness"] = $"stale: the last check completed {age.TotalSeconds:0.0} s ago (a check is hanging: Redis may not be answering)",
        };
        return (false, checks);
    }

    private sealed record Snapshot(bool Ready, IReadOnlyDictionary<string, string> Checks, DateTimeOffset At);
}
