#!lua name=convoy
-- Convoy's MessageBox functions. Loaded with FUNCTION LOAD (which, unlike the EVALSHA cache,
-- is replicated and survives failover) and version-checked by every node at start.
-- Every write that changes an instance is fenced by its owner epoch.
-- Errors start with a CONVOY_* code the client maps to convoy::errc.

local LIBRARY_VERSION = 1

local function is_final(status)
  return status == 'completed' or status == 'failed' or status == 'suspended'
end

local function track(key, id, event, extra)
  redis.call('XADD', key, 'MAXLEN', '~', 10000, '*', 'instance', id, 'event', event,
             'detail', extra or '')
end

-- KEYS: inst, journal. ARGV: owner, now_ms.
-- Bumps the owner epoch (fencing every earlier owner) unless the instance is final.
local function claim(keys, args)
  local inst = keys[1]
  if redis.call('EXISTS', inst) == 0 then
    return redis.error_reply('CONVOY_NO_INSTANCE no instance ' .. inst)
  end
  if not is_final(redis.call('HGET', inst, 'status')) then
    redis.call('HINCRBY', inst, 'epoch', 1)
    redis.call('HSET', inst, 'owner', args[1], 'updated', args[2])
  end
  return {redis.call('HGETALL', inst), redis.call('LRANGE', keys[2], 0, -1)}
end

-- KEYS: inst, journal, timers, tracking, queue of the instance's host.
-- ARGV: epoch, seq, now, status, steps, result, error, host(group), prefix, owner,
--       n_entries, entries..., n_activities, (send_host, step, activity, args, key)...,
--       n_timers, (due, step)..., n_acks, ids...
local function checkpoint(keys, args)
  local inst, journal, timers, tracking, queue = keys[1], keys[2], keys[3], keys[4], keys[5]
  local rec = redis.call('HMGET', inst, 'epoch', 'seq')
  if not rec[1] then
    return redis.error_reply('CONVOY_NO_INSTANCE no instance ' .. inst)
  end
  if tonumber(rec[1]) ~= tonumber(args[1]) then
    return redis.error_reply('CONVOY_STALE_EPOCH owner epoch is ' .. rec[1] ..
                             ', the writer holds ' .. args[1])
  end
  local seq, stored = tonumber(args[2]), tonumber(rec[2] or '0')
  if stored == seq then
    return 'DUPLICATE' -- a retry of a persistence point that was applied
  end
  if stored + 1 ~= seq then
    return redis.error_reply('CONVOY_SEQ persistence point ' .. seq .. ' does not follow ' .. stored)
  end
  local id, host, prefix = string.sub(inst, string.len(args[9]) + 6), args[8], args[9]
  local i = 11
  local n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do redis.call('RPUSH', journal, args[i + k]) end
  i = i + n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    local b = i + 5 * k
    redis.call('XADD', prefix .. 'q:' .. args[b], '*', 'v', 1, 'kind', 'activity', 'instance', id,
               'step', args[b + 1], 'activity', args[b + 2], 'args', args[b + 3],
               'key', args[b + 4], 'reply', host)
  end
  i = i + 5 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    local b = i + 2 * k
    redis.call('ZADD', timers, args[b], host .. '|' .. id .. '|' .. args[b + 1])
  end
  i = i + 2 * n
  n = tonumber(args[i]); i = i + 1
  for k = 0, n - 1 do
    if redis.call('XACK', queue, host, args[i + k]) == 1 then
      redis.call('XDEL', queue, args[i + k])
    end
  end
  redis.call('HSET', inst, 'seq', seq, 'status', args[4], 'steps', args[5], 'updated', args[3])
  if args[6] ~= '' then redis.call('HSET', inst, 'result', args[6]) end
  if args[7] ~= '' then redis.call('HSET', inst, 'error', args[7]) end
  track(tracking, id, args[4], 'seq ' .. seq .. ' steps ' .. args[5])
  return 'OK'
end

-- KEYS: inst, instances index, processing queue, receive queue, tracking.
-- ARGV: id, type, version, input, host, now, receive group, message id.
-- Creates an instance from a submitted message; idempotent (a redelivered message finds it).
local function activate(keys, args)
  local inst, index, processing, receive, tracking = keys[1], keys[2], keys[3], keys[4], keys[5]
  local created = 0
  if redis.call('EXISTS', inst) == 0 then
    redis.call('HSET', inst, 'fmt', 1, 'type', args[2], 'version', args[3], 'input', args[4],
               'host', args[5], 'status', 'pending', 'epoch', 0, 'seq', 0, 'steps', 0,
               'created', args[6], 'updated', args[6])
    redis.call('ZADD', index, args[6], args[1])
    redis.call('XADD', processing, '*', 'v', 1, 'kind', 'start', 'instance', args[1])
    track(tracking, args[1], 'created', args[2] .. ' v' .. args[3])
    created = 1
  end
  if args[8] ~= '' and redis.call('XACK', receive, args[7], args[8]) == 1 then
    redis.call('XDEL', receive, args[8])
  end
  return created
end

-- KEYS: send queue, reply queue. ARGV: send group, message id, instance, step, ok, payload.
-- Publishes an activity's outcome once: a duplicate execution (the entry was already
-- acknowledged) publishes nothing.
local function complete_activity(keys, args)
  if redis.call('XACK', keys[1], args[1], args[2]) == 0 then
    return 'DUPLICATE'
  end
  redis.call('XDEL', keys[1], args[2])
  redis.call('XADD', keys[2], '*', 'v', 1, 'kind', 'result', 'instance', args[3], 'step', args[4],
             'ok', args[5], 'payload', args[6])
  return 'OK'
end

-- KEYS: timers. ARGV: now, limit, prefix. Moves due timers into their hosts' queues, once.
local function fire_timers(keys, args)
  local due = redis.call('ZRANGEBYSCORE', keys[1], '-inf', args[1], 'LIMIT', 0, tonumber(args[2]))
  for _, member in ipairs(due) do
    redis.call('ZREM', keys[1], member)
    local host, id, step = string.match(member, '^([^|]+)|([^|]+)|(%d+)$')
    if host then
      redis.call('XADD', args[3] .. 'q:' .. host, '*', 'v', 1, 'kind', 'timer', 'instance', id,
                 'step', step)
    end
  end
  return #due
end

redis.register_function{function_name = 'convoy_version', callback = function()
  return LIBRARY_VERSION end, flags = {'no-writes'}}
redis.register_function('convoy_claim', claim)
redis.register_function('convoy_checkpoint', checkpoint)
redis.register_function('convoy_activate', activate)
redis.register_function('convoy_complete_activity', complete_activity)
redis.register_function('convoy_fire_timers', fire_timers)
