using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// Which Redis errors mean "this part of Redis cannot answer right now" (fail closed with
/// UNAVAILABLE, retry later) rather than a bug. On a Redis Cluster that includes a slot whose
/// master is lost (a connection error for that node), the whole cluster refusing commands
/// (<c>CLUSTERDOWN</c>), a slot in migration or failover (<c>TRYAGAIN</c>, a <c>MOVED</c>/<c>ASK</c>
/// redirect the client could not follow), and a primary that lost its replicas or is still loading.
/// </summary>
public static class RedisFaults
{
    /// <summary>Error prefixes Redis answers while it (or the slot's node) is unavailable, not because the command is wrong.</summary>
    private static readonly string[] UnavailablePrefixes =
    [
        "LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "NOREPLICAS", "BUSY", "UNBLOCKED",
    ];

    /// <summary>StackExchange.Redis's message when no connected node can take a key (ConnectionMultiplexer.GetServer(key)).</summary>
    private const string NoNodeForTheKey = "It was not possible to resolve a connection to the server owning the specified key";

    /// <summary>True when <paramref name="error"/> says Redis (or the node serving the keys) cannot answer now.</summary>
    public static bool IsUnavailable(Exception error) => error switch
    {
        RedisConnectionException or RedisTimeoutException or TimeoutException or ObjectDisposedException => true,
        // Two primaries in view outside a cluster: a Sentinel failover whose old primary is back as a primary (RedisPrimaryGuard).
        RedisPrimaryGuard.TwoPrimariesException => true,
        // StackExchange.Redis follows one MOVED/ASK redirect per command; a second one (a slot that moved again while the
        // command was redirected, e.g. migrated back and forth) or a redirect of a command sent with NoRedirect surfaces
        // as "Key has MOVED ... redirect not followed": the slot is in motion, not a bug.
        RedisServerException moved when moved.Message.StartsWith("Key has MOVED", StringComparison.Ordinal) => true,
        // A script whose command reached a key of a slot in migration (or ran while the cluster went down): Redis
        // aborts it with "Script attempted to access a non local key in a cluster node" / "... while the cluster is down".
        RedisServerException script when script.Message.Contains("Script attempted to access a non local key", StringComparison.Ordinal)
            || script.Message.Contains("while the cluster is down", StringComparison.Ordinal) => true,
        // WAIT reached a master that a failover turned into a replica between the write and the WAIT.
        RedisServerException wait when wait.Message.Contains("WAIT cannot be used with replica instances", StringComparison.Ordinal) => true,
        RedisServerException server => UnavailablePrefixes.Any(p => server.Message.StartsWith(p, StringComparison.Ordinal)
            && (server.Message.Length == p.Length || server.Message[p.Length] == ' ')),
        // "No connection is active/available to service this operation" for the slot of a lost master.
        RedisException other when other.Message.StartsWith("No connection", StringComparison.Ordinal) => true,
        // GetServer(key) (the write-then-WAIT path asks it for the node that takes the write) with no connected node for the
        // key: the primary down and no other node connected, e.g. during a Sentinel failover (found by the chaos run: a
        // BeginTask answered INTERNAL). Only this message: any other InvalidOperationException is a bug.
        InvalidOperationException noNode when noNode.Message.StartsWith(NoNodeForTheKey, StringComparison.Ordinal) => true,
        _ => false,
    };

    /// <summary>A short name of an unavailable error for a caller's message ("CLUSTERDOWN", "MOVED (redirect not followed)", "RedisConnectionException").</summary>
    public static string Describe(Exception error) => error switch
    {
        RedisServerException moved when moved.Message.StartsWith("Key has MOVED", StringComparison.Ordinal) => "MOVED (redirect not followed)",
        RedisPrimaryGuard.TwoPrimariesException twoPrimaries => twoPrimaries.Message,
        RedisServerException server => server.Message.Split(' ')[0],
        InvalidOperationException noNode when noNode.Message.StartsWith(NoNodeForTheKey, StringComparison.Ordinal) => "no connected node for the key",
        _ => error.GetType().Name,
    };
}
