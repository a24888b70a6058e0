using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// <see cref="ILeaseStore"/> on Redis. Each operation is one Lua script over the keys of one agent
/// shard (one hash slot), so it is atomic and works on Redis Cluster. See docs/architecture.md.
/// </summary>
public sealed class RedisLeaseStore : ILeaseStore, IDisposable
{
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);
    private readonly ConnectionMultiplexer _connection;

    private RedisLeaseStore(ConnectionMultiplexer connection) => _connection = connection;

    /// <summary>Connects without failing when Redis is down at start; calls fail closed until it is back.</summary>
    public static RedisLeaseStore Connect(string configuration)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 2000);
        options.SyncTimeout = Math.Min(options.SyncTimeout, 2000);
        return new RedisLeaseStore(ConnectionMultiplexer.Connect(options));
    }

    private IDatabase Db => _connection.GetDatabase();

    public async Task<LeaseOpenResult> OpenAsync(Lease lease, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var keys = RedisKeys.For(lease.AgentId, lease.LeaseId);
        var expireAt = (lease.MaxDeadline + Retention).ToUnixTimeMilliseconds();
        var result = (RedisResult[])(await Run(() => Db.ScriptEvaluateAsync(LeaseScripts.Open,
            [keys.Lease, RedisKeys.Task(lease.AgentId, lease.TaskId), keys.Deadlines],
            [lease.LeaseId, .. LeaseHash.ToArgs(lease), expireAt])))!;
        if ((int)result[0] == 1)
        {
            return new LeaseOpenResult(lease, Created: true);
        }

        var existing = await GetAsync((string)result[1]!, cancellationToken)
            ?? throw new StoreUnavailableException("the task index points at a lease that no longer exists");
        return new LeaseOpenResult(existing, Created: false);
    }

    public async Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!LeaseIds.TryGetShard(leaseId, out var shard))
        {
            return null;
        }

        var entries = await Run(() => Db.HashGetAllAsync(RedisKeys.Lease(shard, leaseId)));
        return entries.Length == 0 ? null : LeaseHash.FromEntries(leaseId, entries);
    }

    public Task<LeaseTransition> CompleteAsync(string leaseId, DateTimeOffset now, CancellationToken cancellationToken) =>
        TransitionAsync(LeaseScripts.Complete, leaseId, [now.ToUnixTimeMilliseconds()], cancellationToken);

    public Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, CancellationToken cancellationToken) =>
        TransitionAsync(LeaseScripts.Renew, leaseId, [now.ToUnixTimeMilliseconds(), newDeadline.ToUnixTimeMilliseconds()], cancellationToken);

    public async Task<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var due = new List<(double Deadline, string LeaseId)>();
        for (var shard = 0; shard < LeaseIds.ShardCount; shard++)
        {
            var key = RedisKeys.Deadlines(shard);
            var entries = await Run(() => Db.SortedSetRangeByScoreWithScoresAsync(key, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: limit));
            due.AddRange(entries.Select(e => (e.Score, (string)e.Element!)));
        }

        return due.OrderBy(d => d.Deadline).Take(limit).Select(d => d.LeaseId).ToList();
    }

    public void Dispose() => _connection.Dispose();

    private async Task<LeaseTransition> TransitionAsync(string script, string leaseId, RedisValue[] args, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!LeaseIds.TryGetShard(leaseId, out var shard))
        {
            return new LeaseTransition(TransitionOutcome.NotFound, null);
        }

        var result = (RedisResult[])(await Run(() => Db.ScriptEvaluateAsync(script,
            [RedisKeys.Lease(shard, leaseId), RedisKeys.Deadlines(shard)], args)))!;
        var outcome = (string)result[0]!;
        if (outcome == "missing")
        {
            return new LeaseTransition(TransitionOutcome.NotFound, null);
        }

        var lease = await GetAsync(leaseId, cancellationToken);
        return new LeaseTransition(outcome == "applied" ? TransitionOutcome.Applied : TransitionOutcome.NotApplicable, lease);
    }

    private static async Task<T> Run<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException or TimeoutException or ObjectDisposedException
            || (e is RedisServerException s && (s.Message.StartsWith("LOADING", StringComparison.Ordinal) || s.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal) || s.Message.StartsWith("READONLY", StringComparison.Ordinal))))
        {
            throw new StoreUnavailableException("Redis is unreachable: " + e.GetType().Name, e);
        }
    }
}
