#!lua name=convoy
-- Convoy's MessageBox functions. Loaded with FUNCTION LOAD (which, unlike the EVALSHA cache,
-- is replicated and survives failover) and version-checked by every node at start.
-- Every write that changes an instance is fenced by its owner epoch.
-- Errors start with a CONVOY_* code the client maps to convoy::errc.

local LIBRARY_VERSION = 10

-- 'suspended' is final (not resumable: non-determinism, an unknown type); an operator's
-- 'suspended-resumable' is not: its messages are parked until it is resumed or terminated.
local function is_final(status)
  return status == 'completed' or status == 'failed' or status == 'suspended'
         or status == 'cancelled' or status == 'terminated'
end

-- Statuses in which the instance takes no step now: final ones and an operator's suspension.
local function is_halted(status)
  return is_final(status) or status == 'suspended-resumable'
end

-- Arguments to redis.call are passed as strings where they can be: Redis formats a Lua number
-- argument with printf('%.17g') on every call, a visible share of a persistence point's cost.
local function track(key, id, event, extra)
  redis.call('XADD', key, 'MAXLEN', '~', '10000', '*', 'instance', id, 'event', event,
             'detail', extra or '')
end

-- KEYS: inst, journal. ARGV: owner, now_ms.
-- Bumps the owner epoch (fencing every earlier owner) unless the instance is final.
local function claim(keys, args)
  local inst = keys[1]
  if redis.call('EXISTS', inst) == 0 then
    return redis.error_reply('CONVOY_NO_INSTANCE no instance ' .. inst)
  end
  if not is_halted(redis.call('HGET', inst, 'status')) then
    redis.call('HINCRBY', inst, 'epoch', 1)
    redis.call('HSET', inst, 'owner', args[1], 'updated', args[2])
  end
  return {redis.call('HGETALL', inst), redis.call('LRANGE', keys[2], 0, -1)}
end

-- Creates an instance record (pending) with its start message; nothing if it exists.
-- Returns 1 when created.
local function create_instance(prefix, id, otype, version, input, host, now, tracking, parent,
                               parent_step, parent_gen, parent_host)
  local inst = prefix .. 'inst:' .. id
  if redis.call('EXISTS', inst) == 1 then return 0 end
  redis.call('HSET', inst, 'fmt', 1, 'type', otype, 'version', version, 'input', input,
             'host', host, 'status', 'pending', 'epoch', 0, 'seq', 0, 'steps', 0,
             'generation', 0, 'created', now, 'updated', now)
  if parent ~= '' then
    redis.call('HSET', inst, 'parent', parent, 'parent_step', parent_step,
               'parent_gen', parent_gen, 'parent_host', parent_host)
  end
  redis.call('ZADD', prefix .. 'instances', now, id)
  redis.call('XADD', prefix .. 'q:' .. host, '*', 'v', 1, 'kind', 'start', 'instance', id)
  track(tracking, id, 'created', otype .. ' v' .. version)
  return 1
end

local function subscribe(prefix, key, shape, host, id)
  redis.call('SET', prefix .. 'sub:' .. key, host .. '|' .. id)
  redis.call('SADD', prefix .. 'corrsets', shape)
  redis.call('SADD', prefix .. 'subs:' .. id, key)
end

-- An instance reached final `status`: tell an awaiting parent; keep subscriptions a day so
-- late messages show up as zombies.
local function finish(prefix, inst, id, status, result, err)
  local p = redis.call('HMGET', inst, 'parent', 'parent_step', 'parent_gen', 'parent_host')
  if p[1] and p[2] and p[2] ~= '' then
    local ok = status == 'completed' and '1' or '0'
    local payload = status == 'completed' and result or (status .. ': ' .. err)
    redis.call('XADD', prefix .. 'q:' .. p[4], '*', 'v', 1, 'kind', 'result', 'instance', p[1],
               'step', p[2], 'gen', p[3], 'ok', ok, 'payload', payload)
  end
  for _, key in ipairs(redis.call('SMEMBERS', prefix .. 'subs:' .. id)) do
    redis.call('EXPIRE', prefix .. 'sub:' .. key, 86400)
  end
end

-- KEYS: inst, journal, timers, tracking, queue of the instance's host, store identity.
-- ARGV: epoch, seq, now, status, steps, result, error, host(group), prefix, generation,
--       reset(0/1), new_input, query (or '\0' for unchanged),
--       n_entries, entries..., n_activities, (send_host, step, activity, args, key, options)...,
--       n_timers, (due, step)..., n_cancelled_timers, steps...,
--       n_children, (step, child_id, type, input, awaited, version)...,
--       n_subscriptions, (key, shape)...,
--       n_acks, ids..., store id
-- Returns the store's commit number of this persistence point (also for a retry of one
-- already applied): the writer remembers it, and a store that later answers with a smaller commit
-- count has lost acknowledged progress (see message_box.hpp, rollback detection).
local function checkpoint(keys, args)
  local inst, journal, timers, tracking, queue = keys[1], keys[2], keys[3], keys[4], keys[5]
  local store_id = redis.call('HGET', keys[6], 'id')
  if store_id ~= args[#args] then
    return redis.error_reply('CONVOY_STORE_CHANGED this server holds store ' ..
                             tostring(store_id or 'none') .. ', the writer prepared ' ..
                             args[#args] .. ': it may have restarted empty')
  end
  local rec = redis.call('HMGET', inst, 'epoch', 'seq', 'type', 'version', 'status')
  if not rec[1] then
    return redis.error_reply('CONVOY_NO_INSTANCE no instance ' .. inst)
  end
  if rec[5] == 'suspended-resumable' then
    -- Suspension bumps the epoch, so this is a writer that claimed it while suspended.
    return redis.error_reply('CONVOY_STALE_EPOCH the instance is suspended by an operator')
  end
  if tonumber(rec[1]) ~= tonumber(args[1]) then
    return redis.error_reply('CONVOY_STALE_EPOCH owner epoch is ' .. rec[1] ..
                             ', the writer holds ' .. args[1])
  end
  local seq, stored = tonumber(args[2]), tonumber(rec[2] or '0')
  if stored == seq then
    -- A retry of a persistence point that was applied: its commit number again.
    return tonumber(redis.call('HGET', inst, 'commit') or '0')
  end
  if stored + 1 < seq then
    -- The writer saw point seq - 1 acknowledged; the store does not hold it any more.
    return redis.error_reply('CONVOY_ROLLED_BACK persistence point ' .. seq ..
                             ' does not follow ' .. stored ..
                             ': acknowledged persistence points were lost')
  end
  if stored + 1 ~= seq then
    return redis.error_reply('CONVOY_SEQ persistence point ' .. seq .. ' does not follow ' .. stored)
  end
  local prefix, host, now, gen = args[9], args[8], args[3], args[10]
  local id = string.sub(inst, string.len(prefix) + 6)
  if args[11] == '1' then
    redis.call('DEL', journal)
    redis.call('HSET', inst, 'input', args[12], 'generation', gen)
  end
  if args[13] ~= '\0' then redis.call('HSET', inst, 'query', args[13]) end
  local i = 14
  local n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do redis.call('RPUSH', journal, args[i + k]) end
  i = i + n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    local b = i + 6 * k
    redis.call('XADD', prefix .. 'q:' .. args[b], '*', 'v', '1', 'kind', 'activity', 'instance', id,
               'step', args[b + 1], 'activity', args[b + 2], 'args', args[b + 3],
               'key', args[b + 4], 'options', args[b + 5], 'reply', host, 'gen', gen,
               'attempt', '1')
  end
  i = i + 6 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    local b = i + 2 * k
    redis.call('ZADD', timers, args[b], host .. '|' .. id .. '|' .. args[b + 1] .. '|' .. gen)
  end
  i = i + 2 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    redis.call('ZREM', timers, host .. '|' .. id .. '|' .. args[i + k] .. '|' .. gen)
  end
  i = i + n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    local b = i + 6 * k
    local awaited = args[b + 4] == '1'
    create_instance(prefix, args[b + 1], args[b + 2], args[b + 5], args[b + 3], host, now,
                    tracking, id, awaited and args[b] or '', gen, host)
  end
  i = i + 6 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    subscribe(prefix, args[i + 2 * k], args[i + 2 * k + 1], host, id)
  end
  i = i + 2 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    if redis.call('XACK', queue, host, args[i + k]) == 1 then
      redis.call('XDEL', queue, args[i + k])
    end
  end
  local status = args[4]
  local commit = redis.call('HINCRBY', keys[6], 'commits', '1')
  -- args[2] is seq as the writer spelled it (a decimal integer, what '%.17g' of seq gives).
  redis.call('HSET', inst, 'seq', args[2], 'status', status, 'steps', args[5], 'updated', now,
             'commit', string.format('%d', commit))
  if args[6] ~= '' then redis.call('HSET', inst, 'result', args[6]) end
  if args[7] ~= '' then redis.call('HSET', inst, 'error', args[7]) end
  if is_final(status) then finish(prefix, inst, id, status, args[6], args[7]) end
  track(tracking, id, status, 'seq ' .. args[2] .. ' steps ' .. args[5])
  return commit
end

-- KEYS: inst, instances index, processing queue, receive queue, tracking.
-- ARGV: id, type, version, input, host, now, receive group, message id, prefix.
-- Creates an instance from a submitted message; idempotent (a redelivered message finds it).
local function activate(keys, args)
  local created = create_instance(args[9], args[1], args[2], args[3], args[4], args[5], args[6],
                                  keys[5], '', '', '', '')
  if args[8] ~= '' and redis.call('XACK', keys[4], args[7], args[8]) == 1 then
    redis.call('XDEL', keys[4], args[8])
  end
  return created
end

-- KEYS: receive queue, tracking. ARGV: prefix, receive group, message id, body, message type,
--   now, activation type ('' = none), activation version, new instance id, processing host,
--   activation correlation key, activation correlation shape, n_props, (name, value)...
-- Routes a published message: to the instance whose correlation set matches its properties
-- (its mailbox keeps it until the instance receives it), else to a new instance when an
-- activation subscription matches its type, else into the no-subscriber list. A message for
-- a finished instance is a zombie. Nothing is dropped. Returns the outcome and the instance.
local function publish(keys, args)
  local prefix = args[1]
  local props = {}
  local n = tonumber(args[13])
  for k = 0, n - 1 do props[args[14 + 2 * k]] = args[15 + 2 * k] end
  local outcome, target = nil, ''
  for _, shape in ipairs(redis.call('SMEMBERS', prefix .. 'corrsets')) do
    local parts, complete = {}, true
    for name in string.gmatch(shape, '[^&]+') do
      if props[name] == nil then complete = false; break end
      table.insert(parts, name .. '=' .. props[name])
    end
    if complete then
      local key = table.concat(parts, '&')
      local sub = redis.call('GET', prefix .. 'sub:' .. key)
      if sub then
        local host, id = string.match(sub, '^([^|]+)|(.+)$')
        local status = redis.call('HGET', prefix .. 'inst:' .. id, 'status')
        if is_final(status) then
          redis.call('XADD', prefix .. 'zombies', 'MAXLEN', '~', 10000, '*', 'instance', id,
                     'status', status, 'type', args[5], 'correlation', key, 'body', args[4],
                     'at', args[6])
          outcome, target = 'zombie', id
        else
          redis.call('XADD', prefix .. 'q:' .. host, '*', 'v', 1, 'kind', 'message',
                     'instance', id, 'channel', 'corr:' .. key, 'payload', args[4])
          outcome, target = 'routed', id
        end
        break
      end
    end
  end
  if not outcome and args[7] ~= '' then
    local id = args[9]
    create_instance(prefix, id, args[7], args[8], args[4], args[10], args[6], keys[2],
                    '', '', '', '')
    if args[11] ~= '' then subscribe(prefix, args[11], args[12], args[10], id) end
    outcome, target = 'activated', id
  end
  if not outcome then
    redis.call('XADD', prefix .. 'unrouted', 'MAXLEN', '~', 100000, '*', 'type', args[5],
               'body', args[4], 'reason', 'no subscriber', 'at', args[6])
    outcome = 'no-subscriber'
  end
  if args[3] ~= '' and redis.call('XACK', keys[1], args[2], args[3]) == 1 then
    redis.call('XDEL', keys[1], args[3])
  end
  return {outcome, target}
end

-- KEYS: inst. ARGV: prefix, kind (signal|cancel), name, payload.
-- Sends a signal or a cancellation to a running instance through its host's queue.
local function send_to_instance(keys, args)
  local rec = redis.call('HMGET', keys[1], 'status', 'host')
  if not rec[1] then return redis.error_reply('CONVOY_NO_INSTANCE no such instance') end
  if is_final(rec[1]) then
    return redis.error_reply('CONVOY_FINAL the instance is already ' .. rec[1])
  end
  local id = string.sub(keys[1], string.len(args[1]) + 6)
  redis.call('XADD', args[1] .. 'q:' .. rec[2], '*', 'v', 1, 'kind', args[2], 'instance', id,
             'channel', 'signal:' .. args[3], 'payload', args[4])
  return 'OK'
end

-- KEYS: send queue, reply queue. ARGV: send group, message id, instance, step, ok, payload, gen.
-- Publishes an activity's outcome once: a duplicate execution (the entry was already
-- acknowledged) publishes nothing.
local function complete_activity(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 0 then
    return 'DUPLICATE'
  end
  redis.call('XDEL', keys[1], args[2])
  redis.call('XADD', keys[2], '*', 'v', 1, 'kind', 'result', 'instance', args[3], 'step', args[4],
             'ok', args[5], 'payload', args[6], 'gen', args[7])
  return 'OK'
end

-- KEYS: send queue, delayed. ARGV: send group, message id, due, message (JSON: queue + fields).
-- Schedules the next attempt of a failed activity after its backoff, durably, once.
local function retry_activity(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 0 then
    return 'DUPLICATE'
  end
  redis.call('XDEL', keys[1], args[2])
  redis.call('ZADD', keys[2], args[3], args[4])
  return 'OK'
end

-- KEYS: timers, delayed. ARGV: now, limit, prefix.
-- Moves due timers into their hosts' queues, and due delayed messages (activity retries)
-- into theirs, each exactly once.
local function fire_timers(keys, args)
  local fired = 0
  local due = redis.call('ZRANGEBYSCORE', keys[1], '-inf', args[1], 'LIMIT', 0, tonumber(args[2]))
  for _, member in ipairs(due) do
    redis.call('ZREM', keys[1], member)
    local host, id, step, gen = string.match(member, '^([^|]+)|([^|]+)|(%d+)|(%d+)$')
    if host then
      redis.call('XADD', args[3] .. 'q:' .. host, '*', 'v', 1, 'kind', 'timer', 'instance', id,
                 'step', step, 'gen', gen)
      fired = fired + 1
    end
  end
  due = redis.call('ZRANGEBYSCORE', keys[2], '-inf', args[1], 'LIMIT', 0, tonumber(args[2]))
  for _, member in ipairs(due) do
    redis.call('ZREM', keys[2], member)
    local ok, msg = pcall(cjson.decode, member)
    if ok and type(msg) == 'table' and msg.q and msg.f then
      redis.call('XADD', args[3] .. 'q:' .. msg.q, '*', unpack(msg.f))
      fired = fired + 1
    end
  end
  return fired
end

-- Cluster membership, the cluster supervisor's lease and relocation. Times are the Redis
-- server's (TIME), so node clocks may disagree without harm.

local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- KEYS: nodes, node record, tracking, the node's relocations, the processing queue, the
--   node's operator commands.
-- ARGV: name, ttl_ms, hosts (comma separated), load, throttle (JSON text), hosts an operator
--   stopped (comma separated).
-- Renews the node's lease. Returns {code, generation, now, backlog, assignment...}: backlog is
-- the processing queue's length (what the receive host throttles on); code 0 = renewed,
-- 1 = joined, 2 = rejoined after being declared dead (its instances were taken over: it must
-- drop what it holds in memory); each assignment is a 'dead|host' take-over this node owes, so
-- one round trip per heartbeat also delivers the cluster supervisor's plan.
local function heartbeat(keys, args)
  local now = server_ms()
  local status = redis.call('HGET', keys[2], 'status')
  local code = 0
  if status ~= 'alive' then
    code = status == 'dead' and 2 or 1
    redis.call('HINCRBY', keys[2], 'generation', 1)
    redis.call('HSET', keys[2], 'status', 'alive', 'started', now)
    track(keys[3], args[1], code == 2 and 'node-rejoined' or 'node-joined', args[3])
  end
  redis.call('ZADD', keys[1], now + tonumber(args[2]), args[1])
  redis.call('HSET', keys[2], 'fmt', 1, 'name', args[1], 'heartbeat', now, 'hosts', args[3],
             'load', args[4], 'lease_ms', args[2], 'throttle', args[5], 'stopped', args[6] or '')
  local reply = {code, tonumber(redis.call('HGET', keys[2], 'generation')), now,
                 redis.call('XLEN', keys[5])}
  for _, assignment in ipairs(redis.call('HKEYS', keys[4])) do
    reply[#reply + 1] = assignment
  end
  -- Operator commands ('host:<name>' = start|stop) as '!host:<name>=stop' entries.
  -- (keys[6] is absent in calls from nodes older than library 9 during a rolling upgrade.)
  local cmds = keys[6] and redis.call('HGETALL', keys[6]) or {}
  for k = 1, #cmds - 1, 2 do
    reply[#reply + 1] = '!' .. cmds[k] .. '=' .. cmds[k + 1]
  end
  return reply
end

-- KEYS: lease. ARGV: name, ttl_ms.
-- A lease (the cluster supervisor's, or a single-active host's): kept by its holder while
-- renewed, taken by another node once it lapses; every change of holder bumps the fencing
-- epoch. Returns {held (1/0), epoch, holder}.
local function cluster_lease(keys, args)
  local now = server_ms()
  local rec = redis.call('HMGET', keys[1], 'holder', 'epoch', 'expires')
  local holder, epoch, expires = rec[1], tonumber(rec[2] or '0'), tonumber(rec[3] or '0')
  if holder == args[1] or not holder or expires < now then
    if holder ~= args[1] then
      epoch = redis.call('HINCRBY', keys[1], 'epoch', 1)
    end
    redis.call('HSET', keys[1], 'holder', args[1], 'expires', now + tonumber(args[2]))
    return {1, epoch, args[1]}
  end
  return {0, epoch, holder}
end

-- KEYS: nodes, lease, tracking. ARGV: prefix, holder, epoch, hosts....
-- The cluster supervisor's step, fenced by its lease epoch: every node whose lease lapsed is
-- declared dead, and for each host queue where it left entries unacknowledged, the
-- least-loaded live node running that host is told to take them over
-- ({prefix}relocate:{target}, field dead|host). A dead node stays listed until nothing of it
-- is pending (and ten leases have passed), so an assignment whose target dies too is made
-- again. Returns
-- {dead, host, target, pending}... .
local function plan_relocation(keys, args)
  local prefix = args[1]
  local rec = redis.call('HMGET', keys[2], 'holder', 'epoch')
  if rec[1] ~= args[2] or tonumber(rec[2] or '0') ~= tonumber(args[3]) then
    return redis.error_reply('CONVOY_STALE_EPOCH the cluster lease is held by ' ..
                             tostring(rec[1]) .. ' at epoch ' .. tostring(rec[2]))
  end
  local now = server_ms()
  local out = {}
  local live = redis.call('ZRANGEBYSCORE', keys[1], now, '+inf')
  for _, dead in ipairs(redis.call('ZRANGEBYSCORE', keys[1], '-inf', '(' .. now)) do
    local node = prefix .. 'node:' .. dead
    if redis.call('HGET', node, 'status') ~= 'dead' then
      redis.call('HSET', node, 'status', 'dead', 'died', now)
      redis.call('HDEL', prefix .. 'links', dead) -- no peer connects to it any more
      track(keys[3], dead, 'node-dead', 'lease lapsed; declared by ' .. args[2])
    end
    local left = 0
    for h = 4, #args do
      local host = args[h]
      local pending = redis.call('XPENDING', prefix .. 'q:' .. host, host, '-', '+', 1, dead)
      if #pending > 0 then
        local summary = redis.call('XPENDING', prefix .. 'q:' .. host, host)
        local count = 0
        for _, c in ipairs(summary[4] or {}) do
          if c[1] == dead then count = tonumber(c[2]) end
        end
        local target, best = nil, nil
        for _, candidate in ipairs(live) do
          local info = redis.call('HMGET', prefix .. 'node:' .. candidate, 'hosts', 'load', 'status')
          if info[3] == 'alive' and string.find(',' .. (info[1] or '') .. ',', ',' .. host .. ',', 1, true) then
            local load = tonumber(info[2] or '0')
            if not best or load < best then target, best = candidate, load end
          end
        end
        left = left + 1
        if target then
          redis.call('HSET', prefix .. 'relocate:' .. target, dead .. '|' .. host, count)
          table.insert(out, {dead, host, target, count})
        end
      end
    end
    -- Listed a while longer (ten leases) even when nothing is pending: a consumer read
    -- served just before it died can still land in its pending list.
    local info = redis.call('HMGET', node, 'died', 'lease_ms')
    local grace = 10 * tonumber(info[2] or '1000')
    if left == 0 and now - tonumber(info[1] or now) > grace then
      redis.call('ZREM', keys[1], dead)
    end
  end
  return out
end

-- KEYS: queue, relocation assignments of the caller. ARGV: group (host), dead consumer,
-- caller (consumer), count.
-- Moves up to `count` of the dead consumer's unacknowledged entries to the caller and
-- returns them; once none are left, the assignment is done and removed. Idempotent.
local function take_over(keys, args)
  local pending = redis.call('XPENDING', keys[1], args[1], '-', '+', tonumber(args[4]), args[2])
  if #pending == 0 then
    redis.call('HDEL', keys[2], args[2] .. '|' .. args[1])
    return {}
  end
  local ids = {}
  for _, p in ipairs(pending) do table.insert(ids, p[1]) end
  return redis.call('XCLAIM', keys[1], args[1], args[3], 0, unpack(ids))
end

-- KEYS: queue. ARGV: group, ids...
-- Gives pending entries back: each is re-added at the end of the queue (any consumer may read
-- it) and the original acknowledged, atomically and once. Returns how many were re-added.
local function requeue(keys, args)
  local n = 0
  for i = 2, #args do
    local e = redis.call('XRANGE', keys[1], args[i], args[i])
    if redis.call('XACK', keys[1], args[1], args[i]) == 1 and #e == 1 then
      redis.call('XADD', keys[1], '*', unpack(e[1][2]))
      redis.call('XDEL', keys[1], args[i])
      n = n + 1
    end
  end
  return n
end

-- KEYS: nodes, cluster lease, tracking. ARGV: node, holder, epoch, why.
-- The cluster supervisor saw `node` fail (its link dropped and it did not answer again): ends
-- its lease now, so the next step declares it dead. Fenced by the supervisor's lease epoch, so
-- a supervisor that was itself frozen cannot end anybody's lease once it lost its own.
local function end_lease(keys, args)
  local rec = redis.call('HMGET', keys[2], 'holder', 'epoch', 'expires')
  if rec[1] ~= args[2] or tonumber(rec[2] or '0') ~= tonumber(args[3])
     or tonumber(rec[3] or '0') < server_ms() then
    return redis.error_reply('CONVOY_STALE_EPOCH the cluster lease is held by ' ..
                             tostring(rec[1]) .. ' at epoch ' .. tostring(rec[2]))
  end
  local ended = redis.call('ZADD', keys[1], 'XX', 'CH', 0, args[1])
  if ended == 1 then
    track(keys[3], args[1], 'node-unreachable', args[4])
  end
  return ended
end

-- Adapters (issue 6): idempotent intake, single-active adapter leases, suspended sends.

-- KEYS: queue, dedupe key. ARGV: ttl_ms, message id, fields (name, value)...
-- Adds a queue entry once per dedupe key: a sender's retry (an HTTP client after a lost 202,
-- a file re-submitted after a crash, every node at the same schedule tick) finds the id the
-- first one was given and adds nothing. The key expires after ttl_ms, so the set is bounded.
-- Returns {message id, 1 when it was a duplicate else 0}.
local function submit_once(keys, args)
  local seen = redis.call('GET', keys[2])
  if seen then return {seen, 1} end
  redis.call('XADD', keys[1], '*', unpack(args, 3))
  redis.call('SET', keys[2], args[2], 'PX', args[1])
  return {args[2], 0}
end

-- KEYS: lease. ARGV: holder, ttl_ms.
-- Takes the lease of a single-active adapter when it is free, or renews it for its holder.
-- Returns 1 when `holder` holds it now, else 0.
local function adapter_lease(keys, args)
  local current = redis.call('GET', keys[1])
  if current and current ~= args[1] then return 0 end
  redis.call('SET', keys[1], args[1], 'PX', args[2])
  return 1
end

-- KEYS: send queue, suspended, tracking. ARGV: send group, message id, suspension id,
--   record (JSON: q = queue, f = request fields, reason, at, activity, instance).
-- Parks an activity request whose retries are exhausted, acknowledging it, once: nothing
-- runs it until an operator resumes it (convoy_resume_suspended). The caller keeps waiting.
local function suspend_activity(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 0 then
    return 'DUPLICATE'
  end
  redis.call('XDEL', keys[1], args[2])
  redis.call('HSET', keys[2], args[3], args[4])
  local ok, rec = pcall(cjson.decode, args[4])
  local instance = (ok and type(rec) == 'table' and rec.instance) or ''
  track(keys[3], instance, 'suspended', args[3])
  return 'OK'
end

-- KEYS: suspended, tracking. ARGV: suspension id, prefix.
-- Puts a suspended request back on its queue (its attempts start over) and forgets it, once.
local function resume_suspended(keys, args)
  local record = redis.call('HGET', keys[1], args[1])
  if not record then
    return redis.error_reply('CONVOY_NOT_SUSPENDED no suspended message ' .. args[1])
  end
  local ok, rec = pcall(cjson.decode, record)
  if not ok or type(rec) ~= 'table' or not rec.q or not rec.f then
    return redis.error_reply('CONVOY_MALFORMED suspended message ' .. args[1] .. ' is unreadable')
  end
  redis.call('XADD', args[2] .. 'q:' .. rec.q, '*', unpack(rec.f))
  redis.call('HDEL', keys[1], args[1])
  track(keys[2], rec.instance or '', 'resumed', args[1])
  return 'OK'
end

-- Operator control (issue 7): suspend (resumable), resume, terminate, purge. Each is one
-- atomic step that bumps the owner epoch where it takes an instance from its owner, so a
-- node still holding it in memory can write nothing more; an 'evict' entry on the instance's
-- host queue tells that node to drop it from memory at once.

local function audit(prefix, id, action, reason, by, now)
  local key = prefix .. 'audit:' .. id
  redis.call('RPUSH', key, cjson.encode({at = tonumber(now), action = action, reason = reason,
                                         by = by}))
  redis.call('LTRIM', key, -100, -1)
end

local function instance_id(prefix, inst)
  return string.sub(inst, string.len(prefix) + 6)
end

-- `epoch`: the owner epoch that fenced it; an actor that claimed it later ignores the entry.
local function evict(prefix, host, id, epoch)
  redis.call('XADD', prefix .. 'q:' .. host, '*', 'v', 1, 'kind', 'evict', 'instance', id,
             'payload', tostring(epoch))
end

-- KEYS: inst, tracking. ARGV: prefix, reason, now, by.
-- Suspends an unfinished instance, resumably: it takes no more steps, and whatever arrives
-- for it (results, timers, messages, signals) is parked ({p}parked:{id}) until resume.
-- Returns 'OK', or 'ALREADY' when it was suspended already.
local function suspend(keys, args)
  local prefix = args[1]
  local rec = redis.call('HMGET', keys[1], 'status', 'host')
  if not rec[1] then return redis.error_reply('CONVOY_NO_INSTANCE no such instance') end
  if rec[1] == 'suspended-resumable' then return 'ALREADY' end
  if is_final(rec[1]) then
    return redis.error_reply('CONVOY_FINAL the instance is already ' .. rec[1])
  end
  local id = instance_id(prefix, keys[1])
  local epoch = redis.call('HINCRBY', keys[1], 'epoch', 1)
  redis.call('HSET', keys[1], 'status', 'suspended-resumable', 'suspended_from', rec[1],
             'error', 'suspended by ' .. args[4] .. ': ' .. args[2], 'updated', args[3])
  evict(prefix, rec[2], id, epoch)
  track(keys[2], id, 'suspended-resumable', 'by ' .. args[4] .. ': ' .. args[2])
  audit(prefix, id, 'suspended', args[2], args[4], args[3])
  return 'OK'
end

-- KEYS: queue, inst, parked. ARGV: group, ids...
-- An instance actor found its instance suspended: keeps the given entries for it (parked)
-- and acknowledges them, once each. If it was resumed meanwhile, they are put back on the
-- queue instead. 'evict' entries are only acknowledged. Returns how many were parked.
local function park(keys, args)
  local status = redis.call('HGET', keys[2], 'status')
  local n = 0
  for i = 2, #args do
    local e = redis.call('XRANGE', keys[1], args[i], args[i])
    if redis.call('XACK', keys[1], args[1], args[i]) == 1 and #e == 1 then
      local fields, kind = e[1][2], ''
      for k = 1, #fields - 1, 2 do
        if fields[k] == 'kind' then kind = fields[k + 1] end
      end
      if kind ~= 'evict' then
        if status == 'suspended-resumable' then
          redis.call('RPUSH', keys[3], cjson.encode(fields))
          n = n + 1
        else
          redis.call('XADD', keys[1], '*', unpack(fields))
        end
      end
      redis.call('XDEL', keys[1], args[i])
    end
  end
  return n
end

-- KEYS: inst, parked, tracking. ARGV: prefix, reason, now, by.
-- Resumes an instance an operator suspended: back to its status before, its parked entries
-- back on its host's queue in their order, and a start entry so that some node rehydrates it
-- from its last persistence point. Refuses instances suspended as not resumable. Returns the
-- number of parked entries delivered.
local function resume(keys, args)
  local prefix = args[1]
  local rec = redis.call('HMGET', keys[1], 'status', 'host', 'error', 'suspended_from')
  if not rec[1] then return redis.error_reply('CONVOY_NO_INSTANCE no such instance') end
  if rec[1] == 'suspended' then
    return redis.error_reply('CONVOY_NOT_RESUMABLE it was suspended as not resumable (' ..
                             tostring(rec[3] or 'no reason recorded') ..
                             '); terminate it instead')
  end
  if is_final(rec[1]) then
    return redis.error_reply('CONVOY_FINAL the instance is already ' .. rec[1])
  end
  if rec[1] ~= 'suspended-resumable' then
    return redis.error_reply('CONVOY_NOT_SUSPENDED the instance is ' .. rec[1] ..
                             ', not suspended')
  end
  local id = instance_id(prefix, keys[1])
  local back = rec[4] == 'pending' and 'pending' or 'waiting'
  redis.call('HSET', keys[1], 'status', back, 'updated', args[3])
  redis.call('HDEL', keys[1], 'suspended_from', 'error')
  local q = prefix .. 'q:' .. rec[2]
  local parked = redis.call('LRANGE', keys[2], 0, -1)
  for _, p in ipairs(parked) do
    redis.call('XADD', q, '*', unpack(cjson.decode(p)))
  end
  redis.call('DEL', keys[2])
  redis.call('XADD', q, '*', 'v', 1, 'kind', 'start', 'instance', id)
  track(keys[3], id, 'resumed', 'by ' .. args[4] .. ': ' .. args[2] .. '; ' .. #parked ..
        ' parked messages delivered')
  audit(prefix, id, 'resumed', args[2], args[4], args[3])
  return #parked
end

-- KEYS: inst, parked, timers, tracking, zombies. ARGV: prefix, reason, now, by.
-- Ends an unfinished instance (or one suspended as not resumable) as 'terminated' with the
-- reason: its owner is fenced, its pending timers dropped, its parked entries and whatever
-- arrives later kept as zombies, an awaiting parent told. Returns 'OK'.
local function terminate(keys, args)
  local prefix = args[1]
  local rec = redis.call('HMGET', keys[1], 'status', 'host')
  if not rec[1] then return redis.error_reply('CONVOY_NO_INSTANCE no such instance') end
  if is_final(rec[1]) and rec[1] ~= 'suspended' then
    return redis.error_reply('CONVOY_FINAL the instance is already ' .. rec[1])
  end
  local id = instance_id(prefix, keys[1])
  local why = 'terminated by ' .. args[4] .. ': ' .. args[2]
  local epoch = redis.call('HINCRBY', keys[1], 'epoch', 1)
  redis.call('HSET', keys[1], 'status', 'terminated', 'error', why, 'updated', args[3])
  redis.call('HDEL', keys[1], 'suspended_from')
  local cursor, dropped = '0', 0
  repeat
    local page = redis.call('ZSCAN', keys[3], cursor, 'MATCH', '*|' .. id .. '|*', 'COUNT', 1000)
    cursor = page[1]
    for k = 1, #page[2], 2 do
      dropped = dropped + redis.call('ZREM', keys[3], page[2][k])
    end
  until cursor == '0'
  for _, p in ipairs(redis.call('LRANGE', keys[2], 0, -1)) do
    local fields = cjson.decode(p)
    local f = {}
    for k = 1, #fields - 1, 2 do f[fields[k]] = fields[k + 1] end
    redis.call('XADD', keys[5], 'MAXLEN', '~', 10000, '*', 'instance', id, 'status',
               'terminated', 'type', f.kind or '', 'correlation', f.channel or '',
               'body', f.payload or '', 'at', args[3])
  end
  redis.call('DEL', keys[2])
  finish(prefix, keys[1], id, 'terminated', '', why)
  evict(prefix, rec[2], id, epoch)
  track(keys[4], id, 'terminated', why .. '; ' .. dropped .. ' timers dropped')
  audit(prefix, id, 'terminated', args[2], args[4], args[3])
  return 'OK'
end

-- KEYS: inst, journal, instances index. ARGV: prefix, id, statuses (comma separated),
--   updated before (ms).
-- Deletes a finished instance (status among `statuses`, last updated before the cutoff): its
-- record, journal, parked entries, audit trail and the correlation sets still routing to it.
-- Never an unfinished one. Returns 1 when deleted.
local function purge(keys, args)
  local prefix, id = args[1], args[2]
  local rec = redis.call('HMGET', keys[1], 'status', 'updated')
  if not rec[1] then
    redis.call('ZREM', keys[3], id)
    return 0
  end
  if not is_final(rec[1]) or not string.find(',' .. args[3] .. ',', ',' .. rec[1] .. ',', 1, true)
     or tonumber(rec[2] or '0') >= tonumber(args[4]) then
    return 0
  end
  local subs = prefix .. 'subs:' .. id
  for _, key in ipairs(redis.call('SMEMBERS', subs)) do
    local target = redis.call('GET', prefix .. 'sub:' .. key)
    if target and string.sub(target, -(string.len(id) + 1)) == '|' .. id then
      redis.call('DEL', prefix .. 'sub:' .. key)
    end
  end
  redis.call('DEL', keys[1], keys[2], subs, prefix .. 'parked:' .. id, prefix .. 'audit:' .. id)
  redis.call('ZREM', keys[3], id)
  return 1
end

redis.register_function{function_name = 'convoy_version', callback = function()
  return LIBRARY_VERSION end, flags = {'no-writes'}}
redis.register_function('convoy_claim', claim)
redis.register_function('convoy_checkpoint', checkpoint)
redis.register_function('convoy_activate', activate)
redis.register_function('convoy_complete_activity', complete_activity)
redis.register_function('convoy_retry_activity', retry_activity)
redis.register_function('convoy_publish', publish)
redis.register_function('convoy_send_to_instance', send_to_instance)
redis.register_function('convoy_fire_timers', fire_timers)
redis.register_function('convoy_heartbeat', heartbeat)
redis.register_function('convoy_cluster_lease', cluster_lease)
redis.register_function('convoy_plan_relocation', plan_relocation)
redis.register_function('convoy_take_over', take_over)
redis.register_function('convoy_requeue', requeue)
redis.register_function('convoy_end_lease', end_lease)
redis.register_function('convoy_submit_once', submit_once)
redis.register_function('convoy_adapter_lease', adapter_lease)
redis.register_function('convoy_suspend_activity', suspend_activity)
redis.register_function('convoy_resume_suspended', resume_suspended)
redis.register_function('convoy_suspend', suspend)
redis.register_function('convoy_park', park)
redis.register_function('convoy_resume', resume)
redis.register_function('convoy_terminate', terminate)
redis.register_function('convoy_purge', purge)
