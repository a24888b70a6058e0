using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// Fails a call closed while the client sees two primaries outside a cluster. Through Sentinel, after a failover, the old
/// primary restarted from its AOF comes back as a primary (its own configuration names none) until Sentinel makes it a
/// replica of the promoted one, about 10 s later. StackExchange.Redis (3.4.35) reconnects to it, finds two primaries and
/// elects one arbitrarily (the first endpoint: the old primary), so for that whole window every command went to the stale
/// node: reads saw the data of before the failover, and every write, with or without WAIT, was discarded when the node was
/// turned into a replica (its full resync). Writes that WAIT failed there (no replica), but sweeper claims, their
/// confirmations and the reads that decide a call did not. A non-cluster deployment has exactly one primary, so two in view
/// means a failover is in progress: every call is unavailable (retry) until the client sees one again.
/// </summary>
internal static class RedisPrimaryGuard
{
    /// <summary>Returns <paramref name="connection"/>, or throws <see cref="TwoPrimariesException"/> (unavailable) while it sees more than one primary outside a cluster.</summary>
    public static ConnectionMultiplexer SinglePrimary(ConnectionMultiplexer connection)
    {
        string? first = null;
        foreach (var server in connection.GetServers())
        {
            if (server.ServerType != ServerType.Standalone || !server.IsConnected || server.IsReplica)
            {
                continue;
            }

            if (first is not null)
            {
                throw new TwoPrimariesException(
                    $"two Redis primaries in view ({first} and {server.EndPoint}): a failover is in progress (the old primary is back before it was made a replica); retry");
            }

            first = server.EndPoint.ToString();
        }

        return connection;
    }

    /// <summary>The client sees two primaries outside a cluster (see <see cref="RedisPrimaryGuard"/>): unavailable (<see cref="RedisFaults"/>).</summary>
    public sealed class TwoPrimariesException(string message) : RedisException(message);
}
