using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// Replica acknowledgement of the writes that end access (a revocation, a lease completion, a
/// quarantine): after the write the store sends <c>WAIT replicas timeout</c> on the same connection.
/// Fewer acknowledgements than <see cref="Replicas"/> within <see cref="Timeout"/> fail the call as
/// unavailable; the write itself stays in force on the primary (it is never rolled back), and a
/// retry of the same call waits again. With <paramref name="AllLeaseWrites"/> every lease write waits too
/// (opening a lease, renewing, approving): then a failover loses no acknowledged lease either, at the
/// price of one replica round trip per mint (docs/reliability.md).
/// </summary>
public sealed record RedisReplicaAcks(int Replicas, TimeSpan Timeout, bool AllLeaseWrites = false)
{
    /// <summary>Refuses settings that cannot work: at least one replica, and a wait shorter than the command timeout.</summary>
    public void Validate(TimeSpan commandTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Replicas, 1, nameof(Replicas));
        if (Timeout <= TimeSpan.Zero || Timeout >= commandTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout,
                $"The replica wait timeout must be above 0 and shorter than the Redis command timeout ({commandTimeout.TotalMilliseconds:0} ms), or the client gives up before WAIT answers.");
        }
    }

    /// <summary>
    /// Connects a store's main connection and, with <paramref name="acks"/>, a second one for the writes followed by
    /// WAIT (WAIT blocks the connection it runs on and must follow the write on that same connection).
    /// </summary>
    internal static (RedisMultiplexer Main, RedisMultiplexer? Durable) Connect(string configuration, RedisConnectionOptions connection, RedisReplicaAcks? acks)
    {
        acks?.Validate(connection.Timeout);
        var main = RedisMultiplexer.Connect(connection.Configure(configuration));
        try
        {
            return (main, acks is null ? null : RedisMultiplexer.Connect(connection.Configure(configuration)));
        }
        catch
        {
            main.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="script"/> on the write-then-WAIT connection and returns the node that ran it, for
    /// <see cref="UnconfirmedAsync(ConnectionMultiplexer, RedisKey, System.Net.EndPoint)"/>. On a Redis Cluster the script is
    /// sent with <see cref="CommandFlags.NoRedirect"/>: a write the client let an <c>ASK</c> redirect carry to the
    /// importing node would be followed by a WAIT on the node the slot map still names (the migrating one), which
    /// counts that node's replicas, not the ones of the node holding the write, and confirms nothing. So an <c>ASK</c>
    /// fails the call as unavailable (the slot is migrating: retry); a <c>MOVED</c> (nothing ran; the client updated its
    /// slot map) is tried once more on the node the map names now.
    /// </summary>
    internal static async Task<(RedisResult Result, System.Net.EndPoint Node)> EvaluateOnNodeAsync(ConnectionMultiplexer durable, string script, RedisKey[] keys, RedisValue[] args)
    {
        RedisPrimaryGuard.SinglePrimary(durable);
        var node = durable.GetServer(keys[0]).EndPoint;
        try
        {
            return (await durable.GetDatabase().ScriptEvaluateAsync(script, keys, args, CommandFlags.NoRedirect).ConfigureAwait(false), node);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("Key has MOVED", StringComparison.Ordinal))
        {
            // MOVED: the node refused (nothing ran) and the client updated its slot map (after a failover or a finished
            // migration): one more try on the node the map names now. A second MOVED fails the call (unavailable).
            node = durable.GetServer(keys[0]).EndPoint;
            return (await durable.GetDatabase().ScriptEvaluateAsync(script, keys, args, CommandFlags.NoRedirect).ConfigureAwait(false), node);
        }
    }

    /// <summary>
    /// WAIT on the node that took the write: <paramref name="wroteTo"/> (the node of <paramref name="key"/> when the write was
    /// sent on <paramref name="connection"/>). If the client now routes the key elsewhere, a failover (Sentinel, or a cluster
    /// master's replica promoted) or a slot migration came between the write and the WAIT: the write may exist on the old
    /// node only, and WAIT on the new one (a connection that wrote nothing there) would confirm at once; so that is a
    /// shortfall (found by the chaos runs: an acknowledged lease missing after a failover).
    /// </summary>
    internal async Task<string?> UnconfirmedAsync(ConnectionMultiplexer connection, RedisKey key, System.Net.EndPoint wroteTo)
    {
        RedisPrimaryGuard.SinglePrimary(connection);
        var server = connection.GetServer(key);
        return server.EndPoint.Equals(wroteTo)
            ? await UnconfirmedAsync(server).ConfigureAwait(false)
            : $"the primary changed from {wroteTo} to {server.EndPoint} between the write and WAIT (a failover or a slot migration)";
    }

    /// <summary>
    /// <see cref="EvaluateOnNodeAsync"/> then <see cref="UnconfirmedAsync(ConnectionMultiplexer, RedisKey, System.Net.EndPoint)"/>:
    /// null when enough replicas acknowledged, else what fell short, for the caller's unavailable error.
    /// </summary>
    internal async Task<(RedisResult Result, string? Shortfall)> EvaluateThenWaitAsync(ConnectionMultiplexer durable, string script, RedisKey[] keys, RedisValue[] args)
    {
        var (result, node) = await EvaluateOnNodeAsync(durable, script, keys, args).ConfigureAwait(false);
        return (result, await UnconfirmedAsync(durable, keys[0], node).ConfigureAwait(false));
    }

    /// <summary>
    /// WAIT on <paramref name="server"/> (the node that took the write, through the connection that wrote it): null when
    /// enough replicas acknowledged, else what fell short ("0 of 1 acknowledged within 500 ms") for the caller's error.
    /// </summary>
    private async Task<string?> UnconfirmedAsync(IServer server)
    {
        var acked = (long)await server.ExecuteAsync("WAIT", [Replicas, (long)Timeout.TotalMilliseconds]).ConfigureAwait(false);
        return acked >= Replicas ? null : $"{acked} of {Replicas} acknowledged within {Timeout.TotalMilliseconds:0} ms";
    }
}
