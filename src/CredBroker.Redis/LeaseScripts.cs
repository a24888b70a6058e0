namespace CredBroker.Redis;

/// <summary>The Lua scripts; each touches only the keys it is given (one hash slot).</summary>
internal static class LeaseScripts
{
    /// <summary>KEYS: lease, task, deadlines. ARGV: lease id, field/value pairs..., expire-at ms. Returns {1, id} or {0, existing id}.</summary>
    public const string Open = """
        local existing = redis.call('GET', KEYS[2])
        if existing then return {0, existing} end
        local expireAt = ARGV[#ARGV]
        local fields = {}
        for i = 2, #ARGV - 1 do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('PEXPIREAT', KEYS[1], expireAt)
        redis.call('SET', KEYS[2], ARGV[1], 'PXAT', expireAt)
        redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'deadline'), ARGV[1])
        return {1, ARGV[1]}
        """;

    /// <summary>KEYS: lease, deadlines. ARGV: now ms. Returns {applied|unchanged|expired|missing}.</summary>
    public const string Complete = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
        local state = redis.call('HGET', KEYS[1], 'state')
        if state ~= 'active' and state ~= 'pending_approval' then return {'unchanged'} end
        local id = string.match(KEYS[1], 'lease:(.*)$')
        local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
        local now = tonumber(ARGV[1])
        redis.call('ZREM', KEYS[2], id)
        redis.call('HINCRBY', KEYS[1], 'gen', 1)
        if deadline <= now then
          redis.call('HSET', KEYS[1], 'state', 'expired', 'ended', deadline)
          return {'expired'}
        end
        redis.call('HSET', KEYS[1], 'state', 'completed', 'ended', now)
        return {'applied'}
        """;

    /// <summary>KEYS: lease, deadlines. ARGV: now ms, requested deadline ms. Clamped to [deadline, max_deadline].</summary>
    public const string Renew = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
        local state = redis.call('HGET', KEYS[1], 'state')
        local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
        if state ~= 'active' or deadline <= tonumber(ARGV[1]) then return {'unchanged'} end
        local target = math.min(tonumber(ARGV[2]), tonumber(redis.call('HGET', KEYS[1], 'max_deadline')))
        if target < deadline then target = deadline end
        local id = string.match(KEYS[1], 'lease:(.*)$')
        redis.call('HSET', KEYS[1], 'deadline', target)
        redis.call('HINCRBY', KEYS[1], 'gen', 1)
        redis.call('ZADD', KEYS[2], target, id)
        return {'applied'}
        """;
}
