namespace CredBroker.Redis;

/// <summary>
/// Lua for the audit chain. The broker computes each record's hash (SHA-256 is not available in
/// Redis Lua); the append script is a compare-and-set on the head, so replicas that race are
/// told the new head and retry, and the chain never forks. For fairness, a replica that loses the race
/// reserves the next append (briefly): other replicas are refused until it has appended, so a replica
/// with a queue of appends cannot starve one that has to retry. KEYS: log stream, head hash,
/// checkpoint stream, reservation.
/// </summary>
internal static class AuditScripts
{
    /// <summary>Values per record in <see cref="Append"/>'s ARGV after the fixed arguments.</summary>
    public const int ValuesPerRecord = 5;

    /// <summary>ARGV index (1-based) of the first record's values.</summary>
    public const int FirstRecordArg = 9;

    /// <summary>
    /// Appends a batch of records (group commit: one script, so one AOF write and one fsync for all).
    /// ARGV: expected head seq, expected head hash, this replica's id, record count, max records (0 = none),
    /// max age ms (0 = none), genesis hash, checkpoint interval; then per record: hash, body, checkpoint
    /// time ms, checkpoint key id ('' = no checkpoint), checkpoint signature.
    /// Returns {'ok', id...} (one stream id per record), {'conflict', seq, hash} (retry now) or
    /// {'reserved', seq, hash} (retry shortly).
    /// Retention drops whole checkpoint intervals and anchors the chain at the newest dropped checkpoint,
    /// copying its signature to the head hash (anchor_*). It is looked at only when it can have work:
    /// the head keeps when the oldest record comes of age (trim_at, ms) and the sequence from which a
    /// count excess is worth another look (trim_seq), so an append normally reads nothing old.
    /// </summary>
    public const string Append = """
        local head = redis.call('HMGET', KEYS[2], 'seq', 'hash', 'trim_at', 'trim_seq')
        local seq = tonumber(head[1] or '0')
        local hash = head[2] or ARGV[7]
        local holder = redis.call('GET', KEYS[4])
        if holder and holder ~= ARGV[3] then
          return {'reserved', tostring(seq), hash}
        end
        if seq ~= tonumber(ARGV[1]) or hash ~= ARGV[2] then
          if not holder then redis.call('SET', KEYS[4], ARGV[3], 'PX', 250) end
          return {'conflict', tostring(seq), hash}
        end
        if holder then redis.call('DEL', KEYS[4]) end
        local interval = tonumber(ARGV[8])
        local result = {'ok'}
        local prev = hash
        for i = 0, tonumber(ARGV[4]) - 1 do
          local at = 9 + i * 5
          seq = seq + 1
          result[#result + 1] = redis.call('XADD', KEYS[1], '*', 'seq', seq, 'prev', prev, 'hash', ARGV[at], 'body', ARGV[at + 1])
          if ARGV[at + 3] ~= '' then
            redis.call('XADD', KEYS[3], '*', 'seq', seq, 'hash', ARGV[at], 'time', ARGV[at + 2], 'kid', ARGV[at + 3], 'sig', ARGV[at + 4], 'interval', interval)
          end
          prev = ARGV[at]
        end
        redis.call('HSET', KEYS[2], 'seq', seq, 'hash', prev)

        local maxRecords = tonumber(ARGV[5])
        local maxAge = tonumber(ARGV[6])
        if maxRecords == 0 and maxAge == 0 then return result end
        local len = redis.call('XLEN', KEYS[1])
        local excess = 0
        if maxRecords > 0 and len > maxRecords and seq >= tonumber(head[4] or '0') then excess = len - maxRecords end
        local nowMs = 0
        local ageDue = false
        if maxAge > 0 then
          -- The server's clock without TIME (not granted by the documented ACL): the id XADD just generated.
          nowMs = tonumber(string.match(result[#result], '^(%d+)'))
          ageDue = nowMs >= tonumber(head[3] or '0')
        end
        if excess == 0 and not ageDue then return result end

        local examine = excess
        local window = math.max(100, interval)
        if ageDue and examine < window then examine = window end
        if examine > len - 1 then examine = len - 1 end
        local minMs = -1
        if maxAge > 0 then minMs = nowMs - maxAge end
        local candidates = {}
        local youngest = nil
        if examine > 0 then
          for i, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', examine)) do
            local ms = tonumber(string.match(entry[1], '^(%d+)'))
            if i > excess and ms >= minMs then youngest = ms break end
            candidates[#candidates + 1] = entry
          end
        end
        local function field(fields, name)
          for j = 1, #fields, 2 do if fields[j] == name then return fields[j + 1] end end
          return nil
        end
        -- Whole checkpoint intervals only: the new anchor is the newest signed checkpoint among the candidates.
        local anchor = nil
        if #candidates > 0 then
          local lastSeq = tonumber(field(candidates[#candidates][2], 'seq'))
          for _, c in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1000)) do
            local cseq = tonumber(field(c[2], 'seq') or '0')
            if cseq > lastSeq then break end
            anchor = c
          end
        end
        if not anchor then
          -- Nothing can go yet: look again once the oldest retained record comes of age (at most once a
          -- second while a checkpoint interval fills), or once another interval's worth was appended.
          local nextAt = nowMs + 1000
          if youngest and #candidates == 0 then nextAt = youngest + maxAge end
          redis.call('HSET', KEYS[2], 'trim_at', nextAt, 'trim_seq', seq + interval)
          return result
        end
        local anchorSeq = tonumber(field(anchor[2], 'seq'))
        for _, entry in ipairs(candidates) do
          if tonumber(field(entry[2], 'seq')) > anchorSeq then break end
          redis.call('XDEL', KEYS[1], entry[1])
        end
        local af = anchor[2]
        redis.call('HSET', KEYS[2], 'anchor_seq', anchorSeq, 'anchor_hash', field(af, 'hash'), 'anchor_time', field(af, 'time'),
          'anchor_kid', field(af, 'kid'), 'anchor_sig', field(af, 'sig'), 'anchor_interval', field(af, 'interval') or '0',
          'trim_at', 0, 'trim_seq', 0)
        for _, c in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1000)) do
          if tonumber(field(c[2], 'seq') or '0') > anchorSeq then break end
          redis.call('XDEL', KEYS[3], c[1])
        end
        return result
        """;
}
