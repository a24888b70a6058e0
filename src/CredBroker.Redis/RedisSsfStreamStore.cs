using CredBroker.Core.Signals;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>
/// SSF streams in Redis, so a stream's cursor survives a broker restart and every replica serves it:
/// one hash per stream (version, JSON) written by compare-and-set, an index set, and a short-lived
/// push claim per stream (one replica pushes at a time). All keys share the hash tag <c>{ssf}</c>.
/// </summary>
public sealed class RedisSsfStreamStore : ISsfStreamStore
{
    private static readonly RedisKey Index = "cb:{ssf}:streams";

    // KEYS[1] stream hash, KEYS[2] index; ARGV id, expected version, JSON. 1 = written, 0 = version moved.
    private const string SaveScript = """
        local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
        if current ~= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], 'version', current + 1, 'json', ARGV[3])
        redis.call('SADD', KEYS[2], ARGV[1])
        return 1
        """;

    // KEYS[1] claim key; ARGV owner, ttl ms. 1 = held by owner (taken or renewed).
    private const string ClaimScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        """;

    private readonly RedisMultiplexer _connection;

    internal RedisSsfStreamStore(RedisMultiplexer connection) => _connection = connection;

    private static RedisKey StreamKey(string id) => $"cb:{{ssf}}:stream:{id}";

    private static RedisKey ClaimKey(string id) => $"cb:{{ssf}}:push:{id}";

    public async Task<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken)
    {
        var ids = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().SetMembersAsync(Index));
        var streams = new List<SsfStream>(ids.Length);
        foreach (var id in ids)
        {
            if (await GetAsync(id!, cancellationToken) is { } stream)
            {
                streams.Add(stream);
            }
        }

        return streams;
    }

    public async Task<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken)
    {
        var fields = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().HashGetAsync(StreamKey(streamId), ["version", "json"]));
        if (fields[1].IsNullOrEmpty)
        {
            return null;
        }

        return SsfStream.FromJson(fields[1]!) with { Version = (long)fields[0] };
    }

    public async Task<bool> TrySaveAsync(SsfStream stream, long expectedVersion, CancellationToken cancellationToken)
    {
        var written = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().ScriptEvaluateAsync(
            SaveScript, [StreamKey(stream.StreamId), Index], [stream.StreamId, expectedVersion, (stream with { Version = 0 }).ToJson()]));
        return (long)written == 1;
    }

    public async Task<bool> DeleteAsync(string streamId, CancellationToken cancellationToken)
    {
        var db = _connection.Current.GetDatabase();
        var removed = await RedisLeaseStore.Run(() => db.SetRemoveAsync(Index, streamId));
        await RedisLeaseStore.Run(() => db.KeyDeleteAsync([StreamKey(streamId), ClaimKey(streamId)]));
        return removed;
    }

    public async Task<bool> TryClaimPushAsync(string streamId, string owner, TimeSpan ttl, CancellationToken cancellationToken)
    {
        var held = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().ScriptEvaluateAsync(
            ClaimScript, [ClaimKey(streamId)], [owner, (long)ttl.TotalMilliseconds]));
        return (long)held == 1;
    }
}
