using System.Globalization;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// <see cref="ILeaseStore"/> on Redis. Each write is one Lua script over the keys of one agent
/// shard (one hash slot), so it is atomic and works on Redis Cluster. Key layout: docs/lease-store.md.
/// Durability of an acknowledged revoke is Redis's: run it with <c>appendonly yes</c> and
/// <c>appendfsync always</c> (a reply is sent only after the AOF write is fsynced), and with
/// <see cref="RedisReplicaAcks"/> the writes that end access also wait for replicas (docs/operations.md).
/// </summary>
public sealed class RedisLeaseStore : ILeaseStore, IOpenLeaseCount, IDisposable
{
    /// <summary>Index entries a listing call examines at most before it returns a (possibly short) page.</summary>
    private const int ListScanBudget = 2000;
    private readonly RedisMultiplexer _connection;
    private readonly LeaseStoreOptions _options;
    private readonly RedisReplicaAcks? _acks;

    /// <summary>
    /// With replica acks: a second connection for the writes followed by WAIT. WAIT blocks the
    /// connection it runs on (and must run on the one that wrote), so it never stalls the reads and
    /// mints pipelined on <see cref="_connection"/>.
    /// </summary>
    private readonly RedisMultiplexer? _durable;

    private RedisLeaseStore(RedisMultiplexer connection, RedisMultiplexer? durable, LeaseStoreOptions options, RedisReplicaAcks? acks)
    {
        _connection = connection;
        _durable = durable;
        _options = options;
        _acks = acks;
    }

    /// <summary>
    /// Connects without failing when Redis is down at start; calls fail closed until it is back.
    /// <paramref name="replicaAcks"/>: revocations, completions and quarantines wait for that many replicas.
    /// </summary>
    public static RedisLeaseStore Connect(
        string configuration, LeaseStoreOptions? options = null, RedisConnectionOptions? connection = null, RedisReplicaAcks? replicaAcks = null)
    {
        options ??= new LeaseStoreOptions();
        connection ??= new RedisConnectionOptions();
        options.Validate();
        var (main, durable) = RedisReplicaAcks.Connect(configuration, connection, replicaAcks);
        return new RedisLeaseStore(main, durable, options, replicaAcks);
    }

    // Every call fails closed while the client sees two primaries (a Sentinel failover's old primary back as a primary).
    private IDatabase Db => _connection.Primary.GetDatabase();

    private long RetentionMs => (long)_options.RevocationRetention.TotalMilliseconds;

    /// <summary>The signing-key schedule, on this store's connection.</summary>
    public RedisKeyScheduleStore KeySchedule() => new(_connection);

    /// <summary>The SSF stream store on the same connection.</summary>
    public RedisSsfStreamStore SsfStreams() => new(_connection);

    /// <summary>The DPoP proof replay store, on this store's connection (failing closed while two primaries are in view: a proof
    /// recorded on a stale primary would be forgotten at its resync, and could be replayed).</summary>
    public RedisDpopReplayStore DpopReplay() => new(() => _connection.Primary);

    /// <summary>The Redis-corrected clock (<see cref="RedisClock"/>), sampling on this store's connection.</summary>
    public RedisClock Clock(TimeSpan interval, Action<string>? onProblem = null) => RedisClock.On(_connection, interval, onProblem);

    public async Task<LeaseOpenResult> OpenAsync(Lease lease, LeaseQuota quota, CancellationToken cancellationToken)
    {
        quota.Validate();
        LeaseIds.Require(lease);
        cancellationToken.ThrowIfCancellationRequested();
        var shard = LeaseIds.ShardOf(lease.AgentId);
        var expireAt = LeaseStoreOptions.RetainedUntil(lease).ToUnixTimeMilliseconds();
        RedisKey[] keys =
        [
            RedisKeys.Lease(shard, lease.LeaseId), RedisKeys.Deadlines(shard),
            RedisKeys.AgentOpen(lease.AgentId), RedisKeys.AgentOpens(lease.AgentId), RedisKeys.Quarantine(lease.AgentId),
            RedisKeys.ShardLeases(shard),
        ];
        RedisValue[] args =
        [
            lease.LeaseId, expireAt, lease.CreatedAt.ToUnixTimeMilliseconds(), quota.MaxConcurrent ?? 0, quota.MaxOpensPerWindow ?? 0,
            (long)quota.RateWindow.TotalMilliseconds, .. ToxicGuardArgs(quota.ToxicGuards), .. LeaseHash.ToArgs(lease),
        ];
        // With replica acks for all lease writes a new lease is confirmed by the replicas too: no token for a lease a failover could lose.
        var result = _acks is { AllLeaseWrites: true } ? (RedisResult[])(await Durable(LeaseScripts.Open, keys, args))! : await Eval(LeaseScripts.Open, keys, args);
        return (string)result[0]! switch
        {
            "created" => new LeaseOpenResult(lease, Created: true),
            "existing" => new LeaseOpenResult(LeaseHash.FromFlat((string)result[1]!, result[2]), Created: false),
            "quarantined" => LeaseOpenResult.Refused(OpenRefusal.Quarantined),
            "concurrency" => LeaseOpenResult.Refused(OpenRefusal.ConcurrencyLimit, Millis(result[1])),
            "rate" => LeaseOpenResult.Refused(OpenRefusal.RateLimit, Millis(result[1])),
            "toxic" => LeaseOpenResult.Toxic((string)result[1]!),
            var other => throw new InvalidOperationException($"Unexpected open script result '{other}'."),
        };
    }

    public async Task<Lease?> GetAsync(string leaseId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!LeaseIds.TryGetShard(leaseId, out var shard))
        {
            return null;
        }

        var hash = await Eval(LeaseScripts.Get, [RedisKeys.Lease(shard, leaseId)], []);
        return hash.Length == 0 ? null : LeaseHash.FromFlat(leaseId, hash);
    }

    public async Task<Lease?> FindByTaskAsync(string agentId, string taskId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await GetAsync(LeaseIds.For(agentId, taskId), cancellationToken);
    }

    public Task<LeaseTransition> CompleteAsync(string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        KillAsync(leaseId, agentId, now, expectedGeneration, LeaseState.Completed, RevocationCause.Completed, "", "", cancellationToken);

    public Task<LeaseTransition> RevokeAsync(string leaseId, string reason, string actor, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        KillAsync(leaseId, null, now, expectedGeneration, LeaseState.Revoked, RevocationCause.Revoked, reason, actor, cancellationToken);

    public Task<LeaseTransition> RenewAsync(string leaseId, DateTimeOffset newDeadline, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken) =>
        TransitionAsync(LeaseScripts.Renew, leaseId, shard => [RedisKeys.Lease(shard, leaseId), RedisKeys.Deadlines(shard)],
            [now.ToUnixTimeMilliseconds(), newDeadline.ToUnixTimeMilliseconds(), Generation(expectedGeneration)], cancellationToken);

    public Task<LeaseTransition> ApproveAsync(
        string leaseId, IReadOnlyList<string> scopes, DateTimeOffset deadline, string actor, string note, DateTimeOffset now, long? expectedGeneration, CancellationToken cancellationToken,
        IReadOnlyList<ToxicGuard>? toxicGuards = null)
    {
        foreach (var guard in toxicGuards ?? [])
        {
            guard.Validate();
        }

        return TransitionAsync(LeaseScripts.Approve, leaseId, shard => [RedisKeys.Lease(shard, leaseId), RedisKeys.Deadlines(shard)],
            [now.ToUnixTimeMilliseconds(), Generation(expectedGeneration), deadline.ToUnixTimeMilliseconds(), string.Join(' ', scopes), actor, note, .. ToxicGuardArgs(toxicGuards ?? [])],
            cancellationToken);
    }

    public async Task<IReadOnlyList<Lease>> ListOpenLeasesAsync(string agentId, DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        cancellationToken.ThrowIfCancellationRequested();
        var result = await Eval(LeaseScripts.ListOpen, [RedisKeys.AgentOpen(agentId)], [now.ToUnixTimeMilliseconds(), limit]);
        var open = new List<Lease>(result.Length / 2);
        for (var i = 0; i + 1 < result.Length; i += 2)
        {
            if (((RedisResult[])result[i + 1]!).Length > 0 && LeaseHash.FromFlat((string)result[i]!, result[i + 1]) is var lease
                && lease.StateAt(now) is LeaseState.Active or LeaseState.PendingApproval)
            {
                open.Add(lease);
            }
        }

        return open;
    }

    public async Task<ExpiryClaim> ClaimExpiredAsync(int shard, DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, LeaseIds.ShardCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 10_000);
        cancellationToken.ThrowIfCancellationRequested();
        var result = await Eval(LeaseScripts.ClaimExpired, [RedisKeys.Deadlines(shard), RedisKeys.Claimed(shard), RedisKeys.ClaimedDeadlines(shard)],
            [now.ToUnixTimeMilliseconds(), limit, (long)ExpiredLease.ClaimTimeout.TotalMilliseconds]);
        var expired = new List<ExpiredLease>(result.Length / 2);
        for (var i = 0; i + 1 < result.Length; i += 2)
        {
            expired.Add(new ExpiredLease((string)result[i]!, DateTimeOffset.FromUnixTimeMilliseconds((long)(double)result[i + 1])));
        }

        var next = (long)(double)result[^1];
        return new ExpiryClaim(expired, next < 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(next));
    }

    public async Task ConfirmExpiredAsync(int shard, IReadOnlyList<ExpiredLease> recorded, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shard);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(shard, LeaseIds.ShardCount);
        cancellationToken.ThrowIfCancellationRequested();
        if (recorded.Count > 0)
        {
            await Run(() => Db.ScriptEvaluateAsync(LeaseScripts.ConfirmExpired, [RedisKeys.Claimed(shard), RedisKeys.ClaimedDeadlines(shard)], [.. recorded.Select(l => (RedisValue)l.LeaseId)]));
        }
    }

    public async Task<int> QuarantineAgentAsync(string agentId, string reason, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var result = await Durable(LeaseScripts.Quarantine,
            [RedisKeys.Quarantine(agentId), RedisKeys.AgentOpen(agentId), RedisKeys.Revocations(LeaseIds.ShardOf(agentId))],
            [now.ToUnixTimeMilliseconds(), agentId, reason, actor, RetentionMs]);
        return Math.Max(0, (int)result);
    }

    public async Task<bool> ReleaseAgentAsync(string agentId, string actor, DateTimeOffset now, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await Run(() => Db.KeyDeleteAsync(RedisKeys.Quarantine(agentId)));
    }

    public async Task<DateTimeOffset?> GetAgentStatusAsync(string agentId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var since = await Run(() => Db.StringGetAsync(RedisKeys.Quarantine(agentId)));
        return since.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)since);
    }

    public async Task<RevocationPage> ReadRevocationsAsync(RevocationCursor? after, int limit, CancellationToken cancellationToken)
    {
        RevocationFeed.ValidateLimit(limit);
        cancellationToken.ThrowIfCancellationRequested();
        var reads = Enumerable.Range(0, LeaseIds.ShardCount).Select(shard => Eval(LeaseScripts.ReadRevocations,
            [RedisKeys.Revocations(shard), RedisKeys.RevocationsTrimmed(shard)],
            [after?[shard].ToString() ?? "", limit])).ToList();
        var results = await Task.WhenAll(reads);
        var perShard = new List<IReadOnlyList<RevocationEvent>>(LeaseIds.ShardCount);
        var dropped = new LogPosition[LeaseIds.ShardCount];
        for (var shard = 0; shard < LeaseIds.ShardCount; shard++)
        {
            var trimmed = (string)results[shard][0]!;
            dropped[shard] = trimmed.Length > 0 ? LogPosition.Parse(trimmed) : LogPosition.Start;
            perShard.Add(((RedisResult[])results[shard][1]!).Select(e => LeaseHash.EventFromEntry(shard, e)).ToList());
        }

        var tooOld = after is not null && Enumerable.Range(0, LeaseIds.ShardCount).Any(shard => dropped[shard] > after[shard]);
        return RevocationFeed.Page(perShard, after ?? new RevocationCursor(dropped), limit, tooOld);
    }

    public async Task<RevocationCursor> CurrentRevocationCursorAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // The newest entry is the last generated one: trimming runs right after an append and keeps it (the cutoff is before now).
        var tails = await Task.WhenAll(Enumerable.Range(0, LeaseIds.ShardCount).Select(shard =>
            Run(() => Db.ScriptEvaluateAsync(LeaseScripts.Tail, [RedisKeys.Revocations(shard)]))));
        return new RevocationCursor(tails.Select(t => LogPosition.Parse((string)t!)).ToList());
    }

    public Task<LeaseTransition> AddChildAsync(string parentLeaseId, string childLeaseId, DateTimeOffset now, CancellationToken cancellationToken) =>
        TransitionAsync(LeaseScripts.AddChild, parentLeaseId, shard => [RedisKeys.Lease(shard, parentLeaseId), RedisKeys.Children(shard, parentLeaseId)],
            [now.ToUnixTimeMilliseconds(), childLeaseId], cancellationToken);

    public async Task<IReadOnlyList<string>> GetChildrenAsync(string leaseId, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!LeaseIds.TryGetShard(leaseId, out var shard))
        {
            return [];
        }

        var members = await Run(() => Db.SetMembersAsync(RedisKeys.Children(shard, leaseId)));
        return members.Select(m => (string)m!).Order(StringComparer.Ordinal).ToList();
    }

    public async Task<LeasePage> ListLeasesAsync(LeaseQuery query, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var after = query.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        var shards = query.AgentId is { } agent ? [LeaseIds.ShardOf(agent)] : Enumerable.Range(0, LeaseIds.ShardCount).ToArray();
        var page = new List<Lease>(query.PageSize);
        var budget = ListScanBudget;
        LeasePageToken? last = after;

        // A listing of every agent skips a shard it cannot read (its master is lost) and names it on this
        // page and every later page of the walk (the token carries it); one that could read none fails whole.
        var skipped = after?.Skipped ?? 0;
        var read = false;
        StoreUnavailableException? failure = null;
        LeasePage Page(string? next) => new(page, next) { UnreachableShards = LeasePageToken.ShardsOf(skipped) };
        string? Next() => last is null ? null : (last with { Skipped = skipped }).ToString();

        foreach (var shard in shards.Where(s => after is null || s >= after.Shard))
        {
            // One listing index per shard (an agent lives in one shard); filters are applied to what it yields.
            var index = RedisKeys.ShardLeases(shard);
            var position = last?.Shard == shard ? last : null;
            while (true)
            {
                var batch = Math.Min(budget, Math.Max(query.PageSize - page.Count, 50));
                RedisResult[] result;
                try
                {
                    result = await Eval(LeaseScripts.ListIndex, [index],
                        [position?.SortKey.ToString(CultureInfo.InvariantCulture) ?? "", position?.LeaseId ?? "", batch]);
                }
                catch (StoreUnavailableException e) when (shards.Length > 1)
                {
                    failure = e;
                    skipped |= 1 << shard;
                    break;
                }

                read = true;
                for (var i = 0; i + 2 < result.Length; i += 3)
                {
                    var id = (string)result[i]!;
                    position = last = new LeasePageToken(shard, long.Parse((string)result[i + 1]!, CultureInfo.InvariantCulture), id);
                    budget--;
                    if (((RedisResult[])result[i + 2]!).Length > 0 && LeaseHash.FromFlat(id, result[i + 2]) is var lease && query.Matches(lease, now))
                    {
                        page.Add(LeaseQuery.AsOf(lease, now));
                        if (page.Count == query.PageSize)
                        {
                            return Page(Next());
                        }
                    }
                }

                if (budget <= 0)
                {
                    return Page(Next());
                }

                if (result.Length < batch * 3)
                {
                    break;
                }
            }
        }

        if (!read && failure is not null)
        {
            // Not one shard this page needed could be read: nothing to show, the store is unavailable.
            throw failure;
        }

        return Page(null);
    }

    public async Task<long> CountOpenAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var counts = await Task.WhenAll(Enumerable.Range(0, LeaseIds.ShardCount).Select(shard => Run(() => Db.SortedSetLengthAsync(RedisKeys.Deadlines(shard)))));
        return counts.Sum();
    }

    public void Dispose()
    {
        _connection.Dispose();
        _durable?.Dispose();
    }

    private Task<LeaseTransition> KillAsync(
        string leaseId, string? agentId, DateTimeOffset now, long? expectedGeneration, LeaseState state, RevocationCause cause, string reason, string actor,
        CancellationToken cancellationToken) =>
        TransitionAsync(LeaseScripts.Kill, leaseId, shard => [RedisKeys.Lease(shard, leaseId), RedisKeys.Revocations(shard), RedisKeys.Children(shard, leaseId)],
            [now.ToUnixTimeMilliseconds(), Generation(expectedGeneration), state.ToWire(), cause.ToWire(), reason, actor, RetentionMs, agentId ?? ""],
            cancellationToken, durable: true);

    private async Task<LeaseTransition> TransitionAsync(
        string script, string leaseId, Func<int, RedisKey[]> keys, RedisValue[] args, CancellationToken cancellationToken, bool durable = false)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!LeaseIds.TryGetShard(leaseId, out var shard))
        {
            return new LeaseTransition(TransitionOutcome.NotFound, null);
        }

        var keyList = keys(shard);
        // With replica acks for all lease writes every transition waits for them (a renewal or approval lost in a
        // failover would leave a token outliving its lease); otherwise only the writes that end access do.
        var result = durable || _acks is { AllLeaseWrites: true } ? (RedisResult[])(await Durable(script, keyList, args))! : await Eval(script, keyList, args);
        var kind = (string)result[0]!;
        if (kind == "toxic")
        {
            return new LeaseTransition(TransitionOutcome.ToxicCombination, LeaseHash.FromFlat(leaseId, result[2])) { RuleId = (string)result[1]! };
        }

        var outcome = kind switch
        {
            "applied" => TransitionOutcome.Applied,
            "unchanged" => TransitionOutcome.NotApplicable,
            "conflict" => TransitionOutcome.Conflict,
            _ => TransitionOutcome.NotFound,
        };
        return new LeaseTransition(outcome, outcome == TransitionOutcome.NotFound ? null : LeaseHash.FromFlat(leaseId, result[1]))
        {
            // Complete and revoke return the lease's children with the transition (third element).
            Children = result.Length > 2 && outcome != TransitionOutcome.NotFound
                ? ((RedisResult[])result[2]!).Select(m => (string)m!).Order(StringComparer.Ordinal).ToList()
                : null,
        };
    }

    /// <summary>The Open script's guard arguments: count, then per guard its rule id, pattern count and Lua patterns.</summary>
    private static RedisValue[] ToxicGuardArgs(IReadOnlyList<ToxicGuard> guards)
    {
        var args = new List<RedisValue>(1 + (guards.Count * 4)) { guards.Count };
        foreach (var guard in guards)
        {
            args.Add(guard.RuleId);
            args.Add(guard.Held.Count);
            args.AddRange(guard.Held.Select(p => (RedisValue)LuaPattern(p)));
        }

        return [.. args];
    }

    /// <summary>
    /// A scope pattern as an anchored Lua pattern: literal characters escaped, a <c>*</c> segment one
    /// non-empty run without a separator (<see cref="Core.Policy.ScopePattern"/>'s rule).
    /// </summary>
    internal static string LuaPattern(Core.Policy.ScopePattern pattern)
    {
        var lua = new System.Text.StringBuilder("^", (pattern.Text.Length * 2) + 2);
        foreach (var c in pattern.Text)
        {
            if (c == '*')
            {
                lua.Append("[^:/]+");
            }
            else
            {
                if (!char.IsAsciiLetterOrDigit(c))
                {
                    lua.Append('%');
                }

                lua.Append(c);
            }
        }

        return lua.Append('$').ToString();
    }

    private static RedisValue Generation(long? expected) => expected is { } g ? g : "";

    private static TimeSpan Millis(RedisResult ms) => TimeSpan.FromMilliseconds(long.Parse((string)ms!, CultureInfo.InvariantCulture));

    private async Task<RedisResult[]> Eval(string script, RedisKey[] keys, RedisValue[] args) =>
        (RedisResult[])(await Run(() => Db.ScriptEvaluateAsync(script, keys, args)))!;

    /// <summary>
    /// A write that ends access. Without replica acks it is a plain script call; with them the script
    /// runs on the durable connection and WAIT follows on the same connection to the same node (the
    /// primary that owns the keys' slot; a cluster redirect is not followed, RedisReplicaAcks.EvaluateThenWaitAsync).
    /// Too few acknowledgements → unavailable; the write stays.
    /// </summary>
    private async Task<RedisResult> Durable(string script, RedisKey[] keys, RedisValue[] args)
    {
        if (_durable is null || _acks is null)
        {
            return await Run(() => Db.ScriptEvaluateAsync(script, keys, args));
        }

        // One multiplexer and one node for the write and its WAIT (neither may change in between).
        var (result, shortfall) = await Run(() => _acks.EvaluateThenWaitAsync(_durable.Current, script, keys, args));
        if (shortfall is not null)
        {
            throw new StoreUnavailableException(
                $"Redis replicas did not confirm the write: {shortfall} (the write is in force on the primary; retry to confirm it)");
        }

        return result;
    }

    /// <summary>
    /// Every command is bounded by the client's own timeouts (RedisConnectionOptions.Timeout, FailFast
    /// while disconnected); what it throws for "Redis cannot answer" becomes the store's unavailable error.
    /// </summary>
    internal static async Task<T> Run<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (RedisFaults.IsUnavailable(e))
        {
            throw new StoreUnavailableException("Redis is unreachable: " + (e is RedisServerException ? e.GetType().Name + " " : "") + RedisFaults.Describe(e), e);
        }
    }
}
