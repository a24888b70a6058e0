namespace CredBroker.Redis;

/// <summary>
/// The Lua scripts. Each touches only keys of one hash slot: the keys it is given, and keys it
/// builds from their hash tag (a lease named by an index entry, an agent's index). Times are unix ms.
/// Results of transitions: {outcome, lease hash as a flat field/value list}.
/// </summary>
internal static class LeaseScripts
{
    /// <summary>Shared helpers, prepended to every script that needs them.</summary>
    private const string Prelude = """
        local function tag_of(key) return string.match(key, '^(.-}:)') end
        local function ms(x) return string.format('%d', x) end
        local function is_open(state) return state == 'active' or state == 'pending_approval' end

        -- An open lease that is not in the deadline index was claimed by the sweeper: it is expired.
        -- (Open, renew and every ending keep the index in step with the lease in the same script, so
        -- only the claim takes an open lease out of it.) The claim writes nothing per lease; every
        -- reader and writer treats the lease as expired from then on, whatever its own clock says.
        local function swept(tag, id, state)
          return is_open(state) and not redis.call('ZSCORE', tag .. 'deadlines', id)
        end

        -- HGETALL with the state as the store knows it: a swept lease reads as expired (ended at its deadline).
        local function read(tag, id)
          local h = redis.call('HGETALL', tag .. 'lease:' .. id)
          for i = 1, #h, 2 do
            if h[i] == 'state' then
              if swept(tag, id, h[i + 1]) then h[i + 1] = 'expired' end
              break
            end
          end
          return h
        end

        -- Moves an open lease to a terminal state: it leaves the deadline and agent indexes.
        local function end_lease(tag, id, state, ended)
          local lk = tag .. 'lease:' .. id
          local agent = redis.call('HGET', lk, 'agent')
          redis.call('HSET', lk, 'state', state, 'ended', ended)
          redis.call('HINCRBY', lk, 'gen', 1)
          redis.call('ZREM', tag .. 'deadlines', id)
          redis.call('ZREM', tag .. 'agent:' .. agent .. ':open', id)
        end

        -- A lease another script finds past its deadline before any sweeper claimed it (a completion, revocation or
        -- quarantine that came late) ends as expired here, and is handed to the sweepers as a claim that already timed
        -- out (see ClaimExpired): one of them records its expiry, as if it had claimed it itself.
        local function expire_unswept(tag, id, deadline, now)
          end_lease(tag, id, 'expired', deadline)
          redis.call('ZADD', tag .. 'deadlines:claimed', now, id)
          redis.call('HSET', tag .. 'deadlines:claimed:at', id, deadline)
        end

        -- Tokens of the lease die now: a deny entry, useless (so gone) after the lease deadline.
        local function deny(tag, id, deadline, cause)
          redis.call('SET', tag .. 'deny:' .. id, cause, 'PXAT', deadline)
        end

        -- Appends one revocation event and drops, by time, the events older than the retention (ms):
        -- stream ids are the server's clock (XADD *), so the cutoff is the new entry's id time minus
        -- the retention (XTRIM MINID). Records the newest dropped id, because Redis 7.0 does not record
        -- ids removed by trimming; a reader whose cursor is before it missed events (cursor too old).
        local function append_event(tag, retention, fields)
          local stream = tag .. 'revocations'
          local id = redis.call('XADD', stream, '*', unpack(fields))
          local cutoff = ms(tonumber(string.match(id, '^(%d+)')) - retention) .. '-0'
          -- Read forward from the oldest entry, up to the cutoff: this touches only what is dropped (a
          -- reverse read from the cutoff would walk every newer entry when none is older).
          local dropped = redis.call('XRANGE', stream, '-', '(' .. cutoff, 'COUNT', 1000)
          if #dropped > 0 then
            local last = dropped[#dropped][1]
            redis.call('SET', tag .. 'revocations:trimmed', last)
            if #dropped < 1000 then
              redis.call('XTRIM', stream, 'MINID', cutoff)
            else
              redis.call('XTRIM', stream, 'MINID', last)
              redis.call('XDEL', stream, last)
            end
          end
        end

        -- Toxic guards in ARGV from index `at`: a count, then per guard its rule id, a pattern count and
        -- anchored Lua patterns. Returns the rule id of the first guard the agent's active leases (its
        -- open index, entries after `now`) reach with a scope for every pattern, or false; and the ARGV
        -- index after the guards. Run in the script that writes, so concurrent writers cannot each miss
        -- the other. No guards: nothing is read.
        local function toxic_reached(open_key, now, at)
          local guards = {}
          for g = 1, tonumber(ARGV[at]) do
            local count = tonumber(ARGV[at + 2])
            local patterns = {}
            for p = 1, count do patterns[p] = ARGV[at + 2 + p] end
            guards[g] = {ARGV[at + 1], patterns}
            at = at + 2 + count
          end
          at = at + 1
          if #guards == 0 then return false, at end
          local tag, held = tag_of(open_key), {}
          for _, other in ipairs(redis.call('ZRANGEBYSCORE', open_key, '(' .. ms(now), '+inf')) do
            local f = redis.call('HMGET', tag .. 'lease:' .. other, 'state', 'scopes')
            if f[1] == 'active' and f[2] and not swept(tag, other, f[1]) then
              for scope in string.gmatch(f[2], '%S+') do held[#held + 1] = scope end
            end
          end
          for _, guard in ipairs(guards) do
            local reached = true
            for _, pattern in ipairs(guard[2]) do
              local found = false
              for _, scope in ipairs(held) do
                if string.find(scope, pattern) then found = true break end
              end
              if not found then reached = false break end
            end
            if reached then return guard[1], at end
          end
          return false, at
        end

        -- Keeps an index key alive at least until `at` (it never outlives what it indexes by much).
        local function keep_until(key, at)
          if redis.call('PEXPIRETIME', key) < tonumber(at) then redis.call('PEXPIREAT', key, at) end
        end

        -- Redis Cluster: while this slot migrates away, a command on a key the node no longer (or never) holds fails
        -- the script midway, after its earlier writes (keys built from data are not declared, so Redis could not
        -- refuse the script up front). Probe a key that never exists before any write: on a migrating slot the probe
        -- fails and the script answers TRYAGAIN with nothing written (unavailable: the caller retries).
        if KEYS[1] and tag_of(KEYS[1]) then
          local probe = redis.pcall('EXISTS', tag_of(KEYS[1]) .. 'slot-probe')
          if type(probe) == 'table' and probe.err then return redis.error_reply('TRYAGAIN slot in migration (' .. probe.err .. ')') end
        end

        """;

    /// <summary>
    /// KEYS: lease (its id derived from agent and task), deadlines, agent open, agent opens (rate), quarantine, shard leases.
    /// ARGV: id, expire-at, now, max concurrent (0 = none), max opens per window (0 = none), window,
    /// guard count, then per toxic guard: rule id, pattern count, Lua patterns...; then field/value pairs...
    /// Returns {'created'} | {'existing', id, hash} | {'quarantined'} | {'concurrency'|'rate', retry-after ms} | {'toxic', rule id}.
    /// </summary>
    public const string Open = Prelude + """
        if redis.call('EXISTS', KEYS[5]) == 1 then return {'quarantined'} end
        -- The lease id is derived from (agent, task): an existing hash is this task's lease.
        local tag = tag_of(KEYS[1])
        local hash = read(tag, ARGV[1])
        if #hash > 0 then return {'existing', ARGV[1], hash} end
        local id, expireAt, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
        local maxConcurrent, maxOpens, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
        -- Leases past their deadline are expired (the sweeper may not have recorded it yet): drop them here.
        redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ms(now))
        -- Toxic combinations across the agent's leases, checked with the write (see toxic_reached).
        local toxic, at = toxic_reached(KEYS[3], now, 7)
        if toxic then return {'toxic', toxic} end
        if maxConcurrent > 0 and redis.call('ZCARD', KEYS[3]) >= maxConcurrent then
          local soonest = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ms(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
          return {'concurrency', ms(tonumber(soonest[2]) - now)}
        end
        if maxOpens > 0 and redis.call('ZCOUNT', KEYS[4], '(' .. ms(now - window), '+inf') >= maxOpens then
          local oldest = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. ms(now - window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
          return {'rate', ms(tonumber(oldest[2]) + window - now)}
        end
        local fields = {}
        for i = at, #ARGV do fields[#fields + 1] = ARGV[i] end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('PEXPIREAT', KEYS[1], expireAt)
        local deadline = redis.call('HGET', KEYS[1], 'deadline')
        redis.call('ZADD', KEYS[2], deadline, id)
        redis.call('ZADD', KEYS[3], deadline, id)
        keep_until(KEYS[3], expireAt)
        if maxOpens > 0 then
          redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ms(now - window))
          redis.call('ZADD', KEYS[4], now, id)
          keep_until(KEYS[4], ms(now + window))
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', ms(now))
        redis.call('ZADD', KEYS[6], expireAt, id)
        keep_until(KEYS[6], expireAt)
        return {'created'}
        """;


    /// <summary>
    /// Complete and revoke. KEYS: lease, revocations, the lease's children set. ARGV: now, expected generation ('' = any),
    /// target state, cause, reason, actor ('' = the agent), revocation retention (ms), owning agent ('' = any:
    /// a lease of another agent is 'missing', untouched). Past its deadline the lease ends as expired instead,
    /// with no event ('unchanged'). Results after the outcome: the lease hash, then its children (for the cascade).
    /// </summary>
    public const string Kill = Prelude + """
        local f = redis.call('HMGET', KEYS[1], 'state', 'deadline', 'gen', 'agent', 'task')
        if not f[1] or (ARGV[8] ~= '' and f[4] ~= ARGV[8]) then return {'missing'} end
        local tag = tag_of(KEYS[1])
        local id = string.sub(KEYS[1], #tag + 7)
        if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= tonumber(f[3]) then return {'conflict', read(tag, id)} end
        local children = redis.call('SMEMBERS', KEYS[3])
        if not is_open(f[1]) or swept(tag, id, f[1]) then return {'unchanged', read(tag, id), children} end
        local now, deadline = tonumber(ARGV[1]), tonumber(f[2])
        if deadline <= now then
          expire_unswept(tag, id, f[2], ARGV[1])
          return {'unchanged', redis.call('HGETALL', KEYS[1]), children}
        end
        end_lease(tag, id, ARGV[3], ARGV[1])
        deny(tag, id, f[2], ARGV[4])
        local actor = ARGV[6]
        if actor == '' then actor = f[4] end
        -- A denied (or withdrawn) approval records who ended it and why, for the agent watching it.
        if f[1] == 'pending_approval' then redis.call('HSET', KEYS[1], 'ap_ok', '0', 'ap_by', actor, 'ap_note', ARGV[5]) end
        append_event(tag, tonumber(ARGV[7]), {'kind', 'lease', 'lease', id, 'agent', f[4], 'task', f[5], 'cause', ARGV[4],
          'reason', ARGV[5], 'actor', actor, 'at', ARGV[1], 'not_after', f[2]})
        return {'applied', redis.call('HGETALL', KEYS[1]), children}
        """;

    /// <summary>KEYS: lease, deadlines. ARGV: now, requested deadline, expected generation ('' = any). Clamped to [deadline, max_deadline].</summary>
    public const string Renew = Prelude + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
        local tag = tag_of(KEYS[1])
        local id = string.sub(KEYS[1], #tag + 7)
        local f = redis.call('HMGET', KEYS[1], 'state', 'deadline', 'gen', 'agent', 'max_deadline')
        if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= tonumber(f[3]) then return {'conflict', read(tag, id)} end
        local deadline = tonumber(f[2])
        if f[1] ~= 'active' or deadline <= tonumber(ARGV[1]) or swept(tag, id, f[1]) then return {'unchanged', read(tag, id)} end
        local target = math.min(tonumber(ARGV[2]), tonumber(f[5]))
        if target < deadline then target = deadline end
        redis.call('HSET', KEYS[1], 'deadline', ms(target))
        redis.call('HINCRBY', KEYS[1], 'gen', 1)
        redis.call('ZADD', KEYS[2], ms(target), id)
        redis.call('ZADD', tag .. 'agent:' .. f[4] .. ':open', 'XX', ms(target), id)
        return {'applied', redis.call('HGETALL', KEYS[1])}
        """;

    /// <summary>
    /// KEYS: lease, deadlines. ARGV: now, expected generation ('' = any), deadline, scopes (space-separated), actor, note,
    /// then toxic guards (see toxic_reached). Pending approval → active with the given scopes and deadline
    /// (clamped to max_deadline), unless a guard is reached: {'toxic', rule id, hash}, nothing written.
    /// </summary>
    public const string Approve = Prelude + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
        local tag = tag_of(KEYS[1])
        local id = string.sub(KEYS[1], #tag + 7)
        local f = redis.call('HMGET', KEYS[1], 'state', 'deadline', 'gen', 'agent', 'max_deadline')
        if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= tonumber(f[3]) then return {'conflict', read(tag, id)} end
        if f[1] ~= 'pending_approval' or tonumber(f[2]) <= tonumber(ARGV[1]) or swept(tag, id, f[1]) then return {'unchanged', read(tag, id)} end
        local toxic = toxic_reached(tag .. 'agent:' .. f[4] .. ':open', tonumber(ARGV[1]), 7)
        if toxic then return {'toxic', toxic, read(tag, id)} end
        local target = math.min(tonumber(ARGV[3]), tonumber(f[5]))
        redis.call('HSET', KEYS[1], 'state', 'active', 'deadline', ms(target), 'scopes', ARGV[4], 'ap_ok', '1', 'ap_by', ARGV[5], 'ap_note', ARGV[6])
        redis.call('HINCRBY', KEYS[1], 'gen', 1)
        redis.call('ZADD', KEYS[2], ms(target), id)
        redis.call('ZADD', tag .. 'agent:' .. f[4] .. ':open', 'XX', ms(target), id)
        return {'applied', redis.call('HGETALL', KEYS[1])}
        """;

    /// <summary>
    /// KEYS: agent open. ARGV: now, limit. The agent's leases with a deadline after now, soonest first: {id, hash, ...}.
    /// </summary>
    public const string ListOpen = Prelude + """
        local tag = tag_of(KEYS[1])
        local out = {}
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))) do
          out[#out + 1] = id
          out[#out + 1] = read(tag, id)
        end
        return out
        """;

    /// <summary>
    /// The sweeper's claim. KEYS: deadlines, claimed (zset: lease id by when the claim times out), claimed
    /// deadlines (hash: lease id → deadline). ARGV: now, limit, claim timeout (ms). First takes the claims
    /// that timed out unconfirmed (their claimer died or could not record them) again, then the due entries
    /// off the deadline index in one range delete, and returns {id, deadline, ..., next}: that removal is the expiry
    /// (see swept/read), so a mass expiry costs a few index operations per batch and no write per lease.
    /// Every returned lease stays claimed until ConfirmExpired; concurrent claimers never get the same lease
    /// within the timeout (the scripts run one at a time). The last element, next, is when the shard next has
    /// something due (ms: the earliest indexed deadline or claim timeout), -1 when nothing is pending.
    /// </summary>
    public const string ClaimExpired = """
        local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
        local retry = now + tonumber(ARGV[3])
        local out = {}
        local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)
        for _, id in ipairs(stale) do
            out[#out + 1] = id
            out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
            redis.call('ZADD', KEYS[2], retry, id)
        end
        if #stale < limit then
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit - #stale)
            if #due > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due / 2 - 1) end
            for i = 1, #due, 1000 do
                local scored, deadlines = {}, {}
                for j = i, math.min(i + 999, #due), 2 do
                    scored[#scored + 1] = retry
                    scored[#scored + 1] = due[j]
                    deadlines[#deadlines + 1] = due[j]
                    deadlines[#deadlines + 1] = due[j + 1]
                    out[#out + 1] = due[j]
                    out[#out + 1] = due[j + 1]
                end
                redis.call('ZADD', KEYS[2], unpack(scored))
                redis.call('HSET', KEYS[3], unpack(deadlines))
            end
        end
        local next = -1
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        if #first > 0 then next = tonumber(first[2]) end
        first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
        if #first > 0 and (next < 0 or tonumber(first[2]) < next) then next = tonumber(first[2]) end
        out[#out + 1] = tostring(next)
        return out
        """;

    /// <summary>KEYS: claimed, claimed deadlines. ARGV: lease ids whose expiry was recorded. Ends their claims.</summary>
    public const string ConfirmExpired = """
        for i = 1, #ARGV, 1000 do
            local ids = {}
            for j = i, math.min(i + 999, #ARGV) do ids[#ids + 1] = ARGV[j] end
            redis.call('ZREM', KEYS[1], unpack(ids))
            redis.call('HDEL', KEYS[2], unpack(ids))
        end
        return #ARGV
        """;

    /// <summary>
    /// KEYS: parent lease, its children set. ARGV: now, child id. Adds the child only while the parent
    /// is active (not past its deadline, not swept); the set expires with the parent's hash.
    /// Returns {'applied'|'unchanged', parent hash} | {'missing'}.
    /// </summary>
    public const string AddChild = Prelude + """
        if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
        local tag = tag_of(KEYS[1])
        local id = string.sub(KEYS[1], #tag + 7)
        local f = redis.call('HMGET', KEYS[1], 'state', 'deadline')
        if f[1] ~= 'active' or tonumber(f[2]) <= tonumber(ARGV[1]) or swept(tag, id, f[1]) then return {'unchanged', read(tag, id)} end
        redis.call('SADD', KEYS[2], ARGV[2])
        redis.call('PEXPIREAT', KEYS[2], redis.call('PEXPIRETIME', KEYS[1]))
        return {'applied', redis.call('HGETALL', KEYS[1])}
        """;

    /// <summary>KEYS: lease. Returns the lease hash as <c>read</c> reports it (empty when there is none).</summary>
    public const string Get = Prelude + """
        local tag = tag_of(KEYS[1])
        return read(tag, string.sub(KEYS[1], #tag + 7))
        """;






    /// <summary>
    /// KEYS: quarantine, agent open. ARGV: now, agent, reason, actor, revocation retention (ms). Revokes every open
    /// lease (one past its deadline expires), appends one agent event. Returns the number revoked,
    /// or -1 when the agent was already quarantined (nothing written).
    /// </summary>
    public const string Quarantine = Prelude + """
        if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
        local tag, now = tag_of(KEYS[1]), tonumber(ARGV[1])
        redis.call('SET', KEYS[1], ARGV[1])
        local revoked = 0
        for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
          local f = redis.call('HMGET', tag .. 'lease:' .. id, 'state', 'deadline')
          if not f[1] or not is_open(f[1]) then
            redis.call('ZREM', KEYS[2], id)
          elseif swept(tag, id, f[1]) then
            end_lease(tag, id, 'expired', f[2])
          elseif tonumber(f[2]) <= now then
            expire_unswept(tag, id, f[2], ARGV[1])
          else
            end_lease(tag, id, 'revoked', ARGV[1])
            deny(tag, id, f[2], 'quarantined')
            revoked = revoked + 1
          end
        end
        append_event(tag, tonumber(ARGV[5]), {'kind', 'agent', 'lease', '', 'agent', ARGV[2], 'task', '', 'cause', 'quarantined',
          'reason', ARGV[3], 'actor', ARGV[4], 'at', ARGV[1], 'not_after', ARGV[1]})
        return revoked
        """;

    /// <summary>
    /// One shard of the feed. KEYS: revocations, revocations:trimmed. ARGV: after id ('' = from the
    /// oldest retained), count. Returns {newest dropped id or '', entries}.
    /// </summary>
    public const string ReadRevocations = """
        local trimmed = redis.call('GET', KEYS[2]) or ''
        local from = '-'
        if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
        return {trimmed, redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', tonumber(ARGV[2]))}
        """;

    /// <summary>KEYS: revocations. Returns the id of the newest event, or '0-0'.</summary>
    public const string Tail = """
        local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #newest == 0 then return '0-0' end
        return newest[1][1]
        """;

    /// <summary>
    /// One index for listing. KEYS: a lease index. ARGV: after score ('' = from the start), after id, count.
    /// Resumes just after (score, id) even when that entry is gone. Returns {id, score, hash, ...}; hash is empty for a dropped lease.
    /// </summary>
    public const string ListIndex = Prelude + """
        local start = 0
        if ARGV[1] ~= '' then
          local rank = redis.call('ZRANK', KEYS[1], ARGV[2])
          local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
          if rank and tonumber(score) == tonumber(ARGV[1]) then
            start = rank + 1
          else
            start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
            for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
              if m <= ARGV[2] then start = start + 1 end
            end
          end
        end
        local tag = tag_of(KEYS[1])
        local entries = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1, 'WITHSCORES')
        local out = {}
        for i = 1, #entries, 2 do
          out[#out + 1] = entries[i]
          out[#out + 1] = entries[i + 1]
          out[#out + 1] = read(tag, entries[i])
        end
        return out
        """;
}
