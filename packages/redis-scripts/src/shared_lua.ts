/**
 * Lua the shared-lock scripts (shared_scripts.ts) share: holders, the wait queue with each place's mode,
 * the grant rule and the announcements. Every shared script gets the same six keys, in this order:
 * KEYS[1] writer (string), KEYS[2] readers (sorted set), KEYS[3] fencing counter, KEYS[4] queue order,
 * KEYS[5] place leases, KEYS[6] place modes (see `SharedLockKeys`). Expects CLOCK_LUA and FENCE_LUA before it.
 *
 * A mode is `x` (exclusive), `s` (shared, no limit) or a shared request's limit as a decimal integer.
 * A reader's score is when its lease ends (ms, server clock), `+inf` for a lease that never expires; a
 * reader whose score is not past `now` has ended. The writer is kept as a mutex lock is (SET PX), so Redis
 * itself expires it.
 */

/** Expired readers and dead places are dropped in batches of this many: Lua's unpack() has a limit. */
const BATCH = 500

/** How long ended readers stay in their set (see keep_readers). */
export const READER_LINGER_MS = 10_000

export const SHARED_LUA = `
-- An unknown mode (only another application can write one) fails the script: when a release, force
-- release or leave walks the queue to announce, that is after its own write, which then stands.
local function parse_mode(mode)
  if mode == 'x' then return true, nil end
  if mode == 's' then return false, nil end
  local limit = tonumber(mode)
  if limit == nil or limit < 1 or limit ~= math.floor(limit) then
    error('the shared lock queue ' .. KEYS[6] .. ' holds an unknown mode')
  end
  return false, limit
end
-- Reads every key before any write: a key of another type fails the script here, with nothing changed.
-- Returns the fencing counter.
local function check_keys()
  redis.call('GET', KEYS[1])
  redis.call('ZCARD', KEYS[2])
  local fence = read_fence(KEYS[3])
  redis.call('ZCARD', KEYS[4])
  redis.call('ZCARD', KEYS[5])
  redis.call('HLEN', KEYS[6])
  return fence
end
local function drop_batches(key, now_ms, drop)
  local dropped = 0
  while true do
    local dead = redis.call('ZRANGEBYSCORE', key, '-inf', whole(now_ms), 'LIMIT', 0, ${BATCH})
    if #dead == 0 then return dropped end
    drop(dead)
    dropped = dropped + #dead
    if #dead < ${BATCH} then return dropped end
  end
end
-- Drops readers whose lease ended and places whose lease ended; returns how many (0: nothing ended).
local function drop_expired(now_ms)
  local readers = drop_batches(KEYS[2], now_ms, function(dead) redis.call('ZREM', KEYS[2], unpack(dead)) end)
  local places = drop_batches(KEYS[5], now_ms, function(dead)
    redis.call('ZREM', KEYS[4], unpack(dead))
    redis.call('ZREM', KEYS[5], unpack(dead))
    redis.call('HDEL', KEYS[6], unpack(dead))
  end)
  return readers + places
end
local function is_live(score, now_ms)
  return score and (score == 'inf' or tonumber(score) > now_ms)
end
-- The readers' set expires ${READER_LINGER_MS} ms after its last lease ends (never while a lease without end is
-- held): an ended reader stays that long for the next client that looks to drop it and announce who it held
-- up, and a waiter with a live place looks well within that (it renews its place).
local function keep_readers(now_ms)
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if not last[2] then return end
  if last[2] == 'inf' then
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('PEXPIRE', KEYS[2], whole(math.max(1, tonumber(last[2]) - now_ms) + ${READER_LINGER_MS}))
  end
end
-- The counter's expiry, as a mutex's (FENCE_LUA), follows the longest lease still held.
local function keep_shared_fence(token, now, grace)
  if token <= 0 then return end
  local pttl = redis.call('PTTL', KEYS[1])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if pttl == -1 or last[2] == 'inf' then
    redis.call('PERSIST', KEYS[3])
    return
  end
  local longest = math.max(pttl, 0)
  if last[2] then longest = math.max(longest, tonumber(last[2]) - math.floor(now / 1000)) end
  redis.call('PEXPIRE', KEYS[3], fence_expiry(token, now, longest, grace))
end
-- Until the soonest holder's lease ends: ms, -1 if it never ends, -2 if nobody holds (a waiter goes first).
local function soonest_end(now_ms)
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl ~= -2 then return pttl end
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if not first[2] then return -2 end
  if first[2] == 'inf' then return -1 end
  return math.max(0, tonumber(first[2]) - now_ms)
end
local function keep_places(now_ms)
  local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
  if last[2] then
    local left = whole(math.max(1, tonumber(last[2]) - now_ms))
    redis.call('PEXPIRE', KEYS[4], left)
    redis.call('PEXPIRE', KEYS[5], left)
    redis.call('PEXPIRE', KEYS[6], left)
  end
end
local function take_place(owner, mode, lease, now_ms)
  if not redis.call('ZSCORE', KEYS[4], owner) then
    local last = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
    local number = 1
    if last[2] then number = tonumber(last[2]) + 1 end
    redis.call('ZADD', KEYS[4], whole(number), owner)
  end
  redis.call('HSET', KEYS[6], owner, mode)
  redis.call('ZADD', KEYS[5], whole(now_ms + lease), owner)
  keep_places(now_ms)
  return redis.call('ZRANK', KEYS[4], owner)
end
local function leave_place(owner, now_ms)
  local removed = redis.call('ZREM', KEYS[4], owner)
  redis.call('ZREM', KEYS[5], owner)
  redis.call('HDEL', KEYS[6], owner)
  if removed == 1 then keep_places(now_ms) end
  return removed
end
-- Calls visit(owner, exclusive, limit) for the first count live places (all with count nil), in order,
-- until it returns false. Expects dead places dropped.
local function walk_places(count, visit)
  local index = 0
  while count == nil or index < count do
    local last = index + ${BATCH} - 1
    if count ~= nil then last = math.min(last, count - 1) end
    local owners = redis.call('ZRANGE', KEYS[4], index, last)
    if #owners == 0 then return end
    local modes = redis.call('HMGET', KEYS[6], unpack(owners))
    for i = 1, #owners do
      local exclusive, limit = parse_mode(modes[i])
      if not visit(owners[i], exclusive, limit) then return end
    end
    index = index + #owners
  end
end
-- The grant rule, for a request with ahead live places before it, when no writer holds and shared
-- readers do: exclusive needs nobody at all; shared, no exclusive place ahead and, with a limit,
-- readers + shared places ahead < limit.
local function admits(exclusive, limit, shared, ahead)
  if exclusive then return shared == 0 and ahead == 0 end
  local ok = true
  walk_places(ahead, function(_, place_exclusive)
    shared = shared + 1
    if place_exclusive or (limit ~= nil and shared >= limit) then
      ok = false
      return false
    end
    return true
  end)
  return ok and (limit == nil or shared < limit)
end
-- Names on the channel, one message each, every waiter the grant rule admits now, counting those named
-- before it as holders, up to the first it does not. Expects expired readers and dead places dropped.
local function announce(channel)
  if channel == '' then return end
  if redis.call('EXISTS', KEYS[1]) == 1 then return end
  local shared = redis.call('ZCARD', KEYS[2])
  walk_places(nil, function(owner, exclusive, limit)
    if exclusive then
      if shared == 0 then redis.call('PUBLISH', channel, owner) end
      return false
    end
    if limit ~= nil and shared >= limit then return false end
    redis.call('PUBLISH', channel, owner)
    shared = shared + 1
    return true
  end)
end
`
