using System.Globalization;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;

namespace CredBroker.Core.Leases;

/// <summary>
/// What one sweep did: leases expired, how late the latest of them was past its deadline, and the
/// shards it could not reach (skipped this time, retried with backoff; the others were swept).
/// </summary>
public sealed record SweepResult(int Expired, TimeSpan MaxLag)
{
    public IReadOnlyList<int> UnreachableShards { get; init; } = [];

    /// <summary>Why the first unreachable shard could not be swept.</summary>
    public string? UnreachableReason { get; init; }

    /// <summary>When a swept shard next has an expiry due, as the store answered (null: nothing pending, or not known).</summary>
    public DateTimeOffset? NextDue { get; init; }
}

/// <summary>
/// Ends leases whose deadline passed. Every broker replica runs one: each sweep claims due leases
/// shard by shard with the store's atomic claim, so replicas never expire a lease twice, no leader
/// is elected, and a replica that dies mid-sweep loses nothing (its unclaimed leases stay indexed
/// for the others). Tokens of an expired lease are dead by their own <c>exp</c>; the sweep makes
/// the store agree and frees the agent's quota. Each expiry is raised as an audit event (when an
/// <see cref="IAuditEvents"/> is given) by the replica that claimed it, and only then confirmed to the
/// store; a claim left unconfirmed (the replica died or was paused between claim and record, or the audit
/// log was unavailable) is claimed again after <see cref="ExpiredLease.ClaimTimeout"/>: every expiry is
/// recorded at least once (rarely twice, when a paused claimer wakes after the timeout). A shard the store cannot
/// reach (one lost Redis Cluster master) is skipped and retried with its own backoff; the other
/// shards are swept as usual.
/// </summary>
public sealed class LeaseSweeper(ILeaseStore store, TimeProvider time, int batchSize = 1000, IAuditEvents? audit = null)
{
    /// <summary>How often a replica sweeps by default: a lease is recorded expired at most about this long after its deadline, plus the sweep itself.</summary>
    public static TimeSpan DefaultInterval { get; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The longest a replica waits between sweeps while they find nothing: after an empty sweep the
    /// wait doubles from the configured interval up to this, and drops back at the first expiry. An
    /// idle broker so sweeps about once a second (not five times), and a lease is still recorded expired
    /// within about a second of its deadline (plus jitter).
    /// </summary>
    public static TimeSpan MaxIdleInterval { get; } = TimeSpan.FromMilliseconds(800);

    private readonly Dictionary<int, (DateTimeOffset RetryAt, TimeSpan Backoff)> _unreachable = [];

    // Claims this replica holds whose audit record failed (the audit log was away): recorded first at the shard's next
    // sweep (within the backoff, at most 0.4 s after the recovery), rather than after the claim timeout. A replica that
    // dies with them loses nothing: the store hands them to any sweeper after ExpiredLease.ClaimTimeout.
    // Only while the claim is younger than the timeout: after it the store may have handed them to another sweeper.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, (IReadOnlyList<ExpiredLease> Leases, DateTimeOffset ClaimedAt)> _unrecorded = new();

    /// <summary>
    /// One pass over every shard; the shards are claimed concurrently (one burst of pipelined calls, not
    /// one round trip each). Shards that are unreachable are skipped (and, after a failure, not tried again
    /// until their backoff passed); when no shard could be reached the store's error is thrown.
    /// </summary>
    public async Task<SweepResult> SweepOnceAsync(CancellationToken cancellationToken)
    {
        var outcomes = await Task.WhenAll(Enumerable.Range(0, LeaseIds.ShardCount).Select(shard => SweepShardAsync(shard, cancellationToken)));
        var failed = outcomes.Where(o => o.Error is not null).ToList();
        if (failed.Count == LeaseIds.ShardCount)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed[0].Error!);
        }

        return new SweepResult(outcomes.Sum(o => o.Expired), outcomes.Max(o => o.MaxLag))
        {
            UnreachableShards = outcomes.Where(o => o.Unreachable).Select(o => o.Shard).Order().ToList(),
            UnreachableReason = failed.FirstOrDefault()?.Error?.Message,
            NextDue = outcomes.Min(o => o.NextDue),
        };
    }

    private sealed record ShardOutcome(int Shard, int Expired, TimeSpan MaxLag, bool Unreachable, Exception? Error, DateTimeOffset? NextDue = null);

    private async Task<ShardOutcome> SweepShardAsync(int shard, CancellationToken cancellationToken)
    {
        lock (_unreachable)
        {
            if (_unreachable.TryGetValue(shard, out var down) && time.GetUtcNow() < down.RetryAt)
            {
                return new ShardOutcome(shard, 0, TimeSpan.Zero, true, null);
            }
        }

        var expired = 0;
        var maxLag = TimeSpan.Zero;
        DateTimeOffset? nextDue = null;
        try
        {
            if (_unrecorded.TryRemove(shard, out var held) && time.GetUtcNow() - held.ClaimedAt < ExpiredLease.ClaimTimeout)
            {
                var now = time.GetUtcNow();
                await RecordAsync(shard, held.Leases, held.ClaimedAt, cancellationToken);
                expired += held.Leases.Count;
                maxLag = held.Leases.Max(l => now - l.Deadline);
            }

            while (true)
            {
                var now = time.GetUtcNow();
                var claimed = await store.ClaimExpiredAsync(shard, now, batchSize, cancellationToken);
                await RecordAsync(shard, claimed, now, cancellationToken);
                foreach (var lease in claimed)
                {
                    var lag = now - lease.Deadline;
                    maxLag = lag > maxLag ? lag : maxLag;
                }

                expired += claimed.Count;
                nextDue = claimed.NextDue;
                if (claimed.Count < batchSize)
                {
                    break;
                }
            }

            lock (_unreachable)
            {
                _unreachable.Remove(shard);
            }

            return new ShardOutcome(shard, expired, maxLag, false, null, nextDue);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            lock (_unreachable)
            {
                var backoff = _unreachable.TryGetValue(shard, out var previous) ? TimeSpan.FromTicks(Math.Min(previous.Backoff.Ticks * 2, MaxBackoff.Ticks)) : MinShardBackoff;
                _unreachable[shard] = (time.GetUtcNow() + backoff, backoff);
            }

            return new ShardOutcome(shard, expired, maxLag, true, e);
        }
    }

    /// <summary>
    /// Records each claimed expiry, then confirms the claims. The records are raised together (up to
    /// <see cref="RecordConcurrency"/> at a time), so the audit log's group commit writes them in one batch: one round trip
    /// and, with replica acks, one WAIT for all of them, not one each in turn (after a Sentinel failover the first WAIT
    /// alone took 0.5 s, and every expiry behind it waited for it). When the audit log fails, the recorded ones are
    /// confirmed (quietly) and the rest are kept for this shard's next sweep; the failure is rethrown (the shard backs off).
    /// </summary>
    private async Task RecordAsync(int shard, IReadOnlyList<ExpiredLease> claimed, DateTimeOffset claimedAt, CancellationToken cancellationToken)
    {
        var recorded = new List<ExpiredLease>(claimed.Count);
        var unrecorded = new List<ExpiredLease>();
        Exception? away = null;
        foreach (var chunk in claimed.Chunk(RecordConcurrency))
        {
            if (away is not null)
            {
                unrecorded.AddRange(chunk);
                continue;
            }

            var errors = await Task.WhenAll(chunk.Select(lease => TryAuditExpiryAsync(lease, cancellationToken)));
            for (var i = 0; i < chunk.Length; i++)
            {
                (errors[i] is null ? recorded : unrecorded).Add(chunk[i]);
                away ??= errors[i];
            }
        }

        if (away is not null)
        {
            _unrecorded[shard] = (unrecorded, claimedAt);
            if (recorded.Count > 0)
            {
                await ConfirmQuietlyAsync(shard, recorded, cancellationToken);
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(away);
        }

        // Recorded: the claims end. Until then (this replica dies here, or the audit log is away) the
        // store hands them out again, so no expiry goes unrecorded.
        await store.ConfirmExpiredAsync(shard, claimed, cancellationToken);
    }

    /// <summary>How many expiries of one shard are recorded at once (a batch of the audit log's group commit, or part of one).</summary>
    internal const int RecordConcurrency = 64;

    /// <summary>Records one expiry; the unavailable error when the audit log (or the store's read of the lease) is away.</summary>
    private async Task<Exception?> TryAuditExpiryAsync(ExpiredLease expired, CancellationToken cancellationToken)
    {
        try
        {
            await AuditExpiryAsync(expired, cancellationToken);
            return null;
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            return e;
        }
    }

    private async Task ConfirmQuietlyAsync(int shard, IReadOnlyList<ExpiredLease> recorded, CancellationToken cancellationToken)
    {
        try
        {
            await store.ConfirmExpiredAsync(shard, recorded, cancellationToken);
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            // Recorded but not confirmed: recorded once more after the claim timeout (at least once, never lost).
        }
    }

    private static readonly TimeSpan MinShardBackoff = TimeSpan.FromMilliseconds(200);
    // At most 400 ms (±20 %): a lease that fell due during an outage is recorded expired within 1 s of the recovery, the
    // client's reconnect (250 ms) included (docs/reliability.md). Retrying an unreachable store costs a failed call, no more.
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(400);

    private static bool IsUnavailable(Exception e) => e is StoreUnavailableException || e is BrokerException { Kind: BrokerErrorKind.Unavailable } || e is AuditUnavailableException;

    private async Task AuditExpiryAsync(ExpiredLease expired, CancellationToken cancellationToken)
    {
        if (audit is null)
        {
            return;
        }

        // The lease hash outlives its expiry (retention), so the event can name agent, owner and task.
        var lease = await store.GetAsync(expired.LeaseId, cancellationToken);
        // A request that was still waiting for a human when its deadline passed expired as an approval, not as a lease.
        var unanswered = lease?.Approval is { Approved: null };
        await audit.RaiseAsync(new AuditEvent
        {
            Type = unanswered ? AuditEventType.ApprovalExpired : AuditEventType.LeaseExpired,
            Time = time.GetUtcNow(),
            AgentId = lease?.AgentId ?? "",
            Owner = lease?.Owner ?? "",
            TaskId = lease?.TaskId ?? "",
            LeaseId = expired.LeaseId,
            Audience = lease?.Audience ?? "",
            ScopesGranted = lease?.Scopes ?? [],
            Reason = unanswered ? "no operator decided before the approval timed out" : "deadline passed",
            Details = new Dictionary<string, string> { ["deadline"] = expired.Deadline.ToString("O", CultureInfo.InvariantCulture) },
        }, cancellationToken);
    }

    /// <summary>
    /// Sweeps every <paramref name="interval"/> (jittered ±20 %) until cancelled; while sweeps find
    /// nothing the wait grows to <see cref="MaxIdleInterval"/> (never below <paramref name="interval"/>), but never
    /// past the next deadline the store reported (<see cref="SweepResult.NextDue"/>): a lease is recorded expired
    /// right after its deadline, not up to an idle wait later. Leases opened after a sweep are seen by the next one.
    /// A store outage is reported to <paramref name="onError"/> and retried with backoff up to 400 ms; it never stops the loop.
    /// </summary>
    public async Task RunAsync(TimeSpan interval, Action<SweepResult> onSweep, Action<Exception> onError, CancellationToken cancellationToken)
    {
        var backoff = interval;
        var idle = interval;
        var maxIdle = interval > MaxIdleInterval ? interval : MaxIdleInterval;
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan delay;
            try
            {
                var result = await SweepOnceAsync(cancellationToken);
                onSweep(result);
                backoff = interval;
                idle = result.Expired > 0 ? interval : TimeSpan.FromTicks(Math.Min(idle.Ticks * 2, maxIdle.Ticks));
                delay = WaitAfter(result, Jittered(idle), time.GetUtcNow());
                // A shard skipped or failed (its audit record or its store unreachable) is retried at its own backoff
                // (at most 0.4 s), not after the idle wait: sweeps through an outage find nothing, so the idle wait has
                // grown to its maximum by the time the fault ends (the Sentinel lag, docs/reliability.md).
                if (UntilNextRetry(time.GetUtcNow()) is { } retry && retry < delay)
                {
                    delay = retry;
                }
            }
            catch (Exception e) when (IsUnavailable(e))
            {
                onError(e);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                delay = Jittered(backoff);
                idle = interval;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(delay, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// How long to wait after a sweep: <paramref name="idle"/>, or less when the store said a shard has an expiry due
    /// sooner — then just after that deadline (1–20 ms, so replicas do not all claim in the same millisecond), but never
    /// less than <see cref="MinWait"/>: with leases falling due every few milliseconds a replica sweeps at most ten times
    /// a second, not once per deadline.
    /// </summary>
    internal static TimeSpan WaitAfter(SweepResult result, TimeSpan idle, DateTimeOffset now)
    {
        var untilDue = result.NextDue - now;
        if (untilDue is not { } due || due <= TimeSpan.Zero || due >= idle)
        {
            return idle;
        }

        var wait = due + TimeSpan.FromMilliseconds(1 + Random.Shared.Next(20));
        return wait < MinWait ? (MinWait < idle ? MinWait : idle) : wait;
    }

    /// <summary>
    /// How long until the first unreachable shard's backoff ends (null: none is unreachable), never less than
    /// <see cref="MinWait"/>: each retry that fails sets a new backoff of at least 0.2 s, so this is never a busy loop.
    /// </summary>
    private TimeSpan? UntilNextRetry(DateTimeOffset now)
    {
        lock (_unreachable)
        {
            if (_unreachable.Count == 0)
            {
                return null;
            }

            var wait = _unreachable.Values.Min(d => d.RetryAt) - now;
            return wait < MinWait ? MinWait : wait;
        }
    }

    /// <summary>The shortest wait between two sweeps of one replica when it wakes for a deadline.</summary>
    internal static TimeSpan MinWait { get; } = TimeSpan.FromMilliseconds(100);

    private static TimeSpan Jittered(TimeSpan delay) => TimeSpan.FromTicks((long)(delay.Ticks * (0.8 + (Random.Shared.NextDouble() * 0.4))));
}
