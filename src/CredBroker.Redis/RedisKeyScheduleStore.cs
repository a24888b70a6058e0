using CredBroker.Core.Tokens;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>The shared signing-key schedule: one hash (version, JSON), replaced by compare-and-set.</summary>
public sealed class RedisKeyScheduleStore : IKeyScheduleStore
{
    private static readonly RedisKey Key = "cb:signing:schedule";

    // KEYS[1] schedule hash; ARGV expected version, new version, JSON. 1 = written, 0 = version moved.
    private const string ReplaceScript = """
        local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
        if current ~= tonumber(ARGV[1]) then return 0 end
        redis.call('HSET', KEYS[1], 'version', ARGV[2], 'json', ARGV[3])
        return 1
        """;

    private readonly RedisMultiplexer _connection;

    internal RedisKeyScheduleStore(RedisMultiplexer connection) => _connection = connection;

    public async Task<KeySchedule> GetAsync(CancellationToken cancellationToken)
    {
        var json = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().HashGetAsync(Key, "json"));
        return json.IsNullOrEmpty ? KeySchedule.Empty : KeySchedule.FromJson(json!);
    }

    public async Task<bool> TryReplaceAsync(long expectedVersion, KeySchedule schedule, CancellationToken cancellationToken)
    {
        var written = await RedisLeaseStore.Run(() => _connection.Current.GetDatabase().ScriptEvaluateAsync(
            ReplaceScript, [Key], [expectedVersion, schedule.Version, schedule.ToJson()]));
        return (long)written == 1;
    }
}
