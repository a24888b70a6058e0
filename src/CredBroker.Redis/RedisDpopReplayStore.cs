using CredBroker.Core.Dpop;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// The DPoP replay store every broker replica shares: one key per accepted proof
/// (<c>cb:dpop:&lt;hash of thumbprint and jti&gt;</c>), written with <c>SET NX PX</c> so exactly one replica
/// accepts a proof, and expiring with the proof's acceptance window (bounded by the caller). Memory is
/// bounded by the proof rate times the window. Redis unreachable: <see cref="Core.Broker.StoreUnavailableException"/>.
/// </summary>
public sealed class RedisDpopReplayStore : IDpopReplayStore
{
    private const string Prefix = "cb:dpop:";

    /// <summary>The longest time a proof is remembered, whatever the caller asks.</summary>
    public static readonly TimeSpan MaxTtl = TimeSpan.FromMinutes(20);

    private readonly Func<IConnectionMultiplexer> _connection;

    public RedisDpopReplayStore(IConnectionMultiplexer connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = () => connection;
    }

    /// <summary>On a connection that may be replaced (<see cref="RedisMultiplexer"/>): asked per call.</summary>
    internal RedisDpopReplayStore(Func<IConnectionMultiplexer> connection) => _connection = connection;

    public async ValueTask<bool> TryRecordAsync(string key, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Length > 128)
        {
            throw new ArgumentException("A replay key is a hash (at most 128 characters).", nameof(key));
        }

        var expiry = ttl < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : ttl > MaxTtl ? MaxTtl : ttl;
        return await RedisLeaseStore.Run(() => _connection().GetDatabase().StringSetAsync(Prefix + key, "1", expiry, When.NotExists));
    }
}
