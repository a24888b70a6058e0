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
    /// <summary>
    /// ARGV: expected head seq, expected head hash, new hash, body, max records (0 = none),
    /// max age ms (0 = none), genesis hash, checkpoint time ms, checkpoint key id ('' = no checkpoint), signature,
    /// this replica's id, checkpoint interval. Retention drops whole checkpoint intervals and anchors the chain at the
    /// newest dropped checkpoint, copying its signature to the head hash (anchor_*). Returns {'ok', id}, {'conflict', seq, hash} (retry now) or {'reserved', seq, hash} (retry shortly).
    /// </summary>
    public const string Append = """
        local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
        local seq = tonumber(head[1] or '0')
        local hash = head[2] or ARGV[7]
        local holder = redis.call('GET', KEYS[4])
        if holder and holder ~= ARGV[11] then
          return {'reserved', tostring(seq), hash}
        end
        if seq ~= tonumber(ARGV[1]) or hash ~= ARGV[2] then
          if not holder then redis.call('SET', KEYS[4], ARGV[11], 'PX', 250) end
          return {'conflict', tostring(seq), hash}
        end
        if holder then redis.call('DEL', KEYS[4]) end
        local nextSeq = seq + 1
        local id = redis.call('XADD', KEYS[1], '*', 'seq', nextSeq, 'prev', ARGV[2], 'hash', ARGV[3], 'body', ARGV[4])
        redis.call('HSET', KEYS[2], 'seq', nextSeq, 'hash', ARGV[3])
        if ARGV[9] ~= '' then
          redis.call('XADD', KEYS[3], '*', 'seq', nextSeq, 'hash', ARGV[3], 'time', ARGV[8], 'kid', ARGV[9], 'sig', ARGV[10], 'interval', ARGV[12])
        end

        local maxRecords = tonumber(ARGV[5])
        local maxAge = tonumber(ARGV[6])
        local len = redis.call('XLEN', KEYS[1])
        local excess = 0
        if maxRecords > 0 and len > maxRecords then excess = len - maxRecords end
        local examine = excess
        local window = math.max(100, tonumber(ARGV[12]))
        if maxAge > 0 and examine < window then examine = window end
        if examine > len - 1 then examine = len - 1 end
        if examine <= 0 then return {'ok', id} end

        local minMs = -1
        if maxAge > 0 then
          local t = redis.call('TIME')
          minMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - maxAge
        end
        local candidates = {}
        for i, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', examine)) do
          local ms = tonumber(string.match(entry[1], '^(%d+)'))
          if i > excess and ms >= minMs then break end
          candidates[#candidates + 1] = entry
        end
        if #candidates == 0 then return {'ok', id} end
        local function field(fields, name)
          for j = 1, #fields, 2 do if fields[j] == name then return fields[j + 1] end end
          return nil
        end
        -- Whole checkpoint intervals only: the new anchor is the newest signed checkpoint among the candidates.
        local lastSeq = tonumber(field(candidates[#candidates][2], 'seq'))
        local anchor = nil
        for _, c in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1000)) do
          local cseq = tonumber(field(c[2], 'seq') or '0')
          if cseq > lastSeq then break end
          anchor = c
        end
        if not anchor then return {'ok', id} end
        local anchorSeq = tonumber(field(anchor[2], 'seq'))
        for _, entry in ipairs(candidates) do
          if tonumber(field(entry[2], 'seq')) > anchorSeq then break end
          redis.call('XDEL', KEYS[1], entry[1])
        end
        local af = anchor[2]
        redis.call('HSET', KEYS[2], 'anchor_seq', anchorSeq, 'anchor_hash', field(af, 'hash'), 'anchor_time', field(af, 'time'),
          'anchor_kid', field(af, 'kid'), 'anchor_sig', field(af, 'sig'), 'anchor_interval', field(af, 'interval') or '0')
        for _, c in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1000)) do
          if tonumber(field(c[2], 'seq') or '0') > anchorSeq then break end
          redis.call('XDEL', KEYS[3], c[1])
        end
        return {'ok', id}
        """;
}
