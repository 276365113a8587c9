/**
 * The Lua scripts behind every lock operation, shared by @verrou/redis and @verrou/upstash (which bundles
 * this file). Each runs atomically on the server, so the server's clock decides expiry and the order of
 * waiters, and no other client can act between a check and the write that follows it. Kept free of
 * imports from outside this package so either store can bundle it without a dependency.
 *
 * A ttl argument is a whole number of milliseconds, or '' for a lease that never expires. A grace
 * argument is how long, in milliseconds, a fencing counter outlives its lock. A channel argument is
 * where the next waiter is announced, or '' to announce nothing (no store listens). Every script reads
 * each key it will write before writing anything, so another application's value of another type there
 * fails the script (WRONGTYPE) with nothing changed.
 */

import { CLOCK_LUA, FENCE_LUA, QUEUE_LUA, READ_FENCE_LUA } from './lua_helpers.js'

/*
 * Each script that touches the queue first asks, with one EXISTS, whether the key has one. With nobody
 * waiting (the uncontended case) it does no more than the lock and its counter need. Acquire and release
 * run that case first, written out inline, and define their Lua functions only past it: a script defines
 * its functions anew on every call that reaches them, and calling them costs too (paired, about 2% of
 * an uncontended cycle).
 */

/**
 * KEYS: lock, fence, queue, queue leases, queue inboxes. ARGV: owner, ttl, grace, place lease ('' without
 * wait), inbox (the channel owner's process listens on, or '').
 * Grants only if the lock is free and no live waiter stands ahead of owner (owner's own place, if any, is
 * then removed). Otherwise, with a place lease, owner joins the queue at the tail or keeps its place, and
 * the place lease is renewed. Returns the fencing token (a positive integer) when granted; refused,
 * {pttl} without a place lease and {pttl, position} with one: pttl is the holder's (-1: never expires;
 * -2: the lock is free, but a waiter goes first), position owner's 0-based rank among the live waiters.
 *
 * With no queue this is SET NX (PX) as a bare client would send it, plus the counter: read before any
 * write (so a foreign value there fails with nothing changed), written only once the lock is taken. SET
 * NX does not see another application's hash or list at the lock key as anything but "exists", so a
 * refusal then GETs the lock: a WRONGTYPE error, never "held".
 */
export const ACQUIRE_SCRIPT = `${READ_FENCE_LUA}
if fence >= 9007199254740991 then
  error('the fencing counter ' .. KEYS[2] .. ' is past the largest safe integer')
end
if redis.call('EXISTS', KEYS[3], KEYS[4]) == 0 then
  local taken
  if ARGV[2] == '' then
    taken = redis.call('SET', KEYS[1], ARGV[1], 'NX')
  else
    taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  end
  if taken then
    -- grant(now_us()) below, inline
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
    local token = now
    if fence >= now then token = fence + 1 end
    if ARGV[2] == '' then
      redis.call('SET', KEYS[2], string.format('%d', token))
    else
      local ahead = math.ceil((token - now) / 1000)
      local expiry = tonumber(ARGV[3]) + math.max(tonumber(ARGV[2]), ahead)
      redis.call('SET', KEYS[2], string.format('%d', token), 'PX', string.format('%d', expiry))
    end
    return token
  end
  redis.call('GET', KEYS[1])
  if ARGV[4] == '' then return {redis.call('PTTL', KEYS[1])} end
end
${CLOCK_LUA}${FENCE_LUA}
local owner = ARGV[1]
local function take_lock()
  if ARGV[2] == '' then return redis.call('SET', KEYS[1], owner, 'NX') end
  return redis.call('SET', KEYS[1], owner, 'NX', 'PX', ARGV[2])
end
local function grant(now)
  local token = math.max(fence + 1, now)
  if ARGV[2] == '' then
    redis.call('SET', KEYS[2], whole(token))
  else
    redis.call('SET', KEYS[2], whole(token), 'PX', fence_expiry(token, now, tonumber(ARGV[2]), tonumber(ARGV[3])))
  end
  return token
end
${QUEUE_LUA}
local holder = redis.call('GET', KEYS[1])
check_queue(KEYS[3], KEYS[4], KEYS[5])
local now = now_us()
local now_millis = math.floor(now / 1000)
drop_dead(KEYS[3], KEYS[4], KEYS[5], now_millis)
local first = first_waiter(KEYS[3])
if not holder and (not first or first == owner) then
  leave_place(KEYS[3], KEYS[4], KEYS[5], owner, now_millis)
  take_lock()
  return grant(now)
end
local pttl = redis.call('PTTL', KEYS[1])
if ARGV[4] == '' then
  return {pttl}
end
return {pttl, take_place(KEYS[3], KEYS[4], KEYS[5], owner, tonumber(ARGV[4]), ARGV[5], now_millis)}
`

/**
 * KEYS: lock, fence, queue, queue leases, queue inboxes. ARGV: owner, channel, grace. Returns 1 if `owner`
 * held the lock and it is now released, else 0. The first live waiter, if any, is announced by its owner
 * id; with nobody waiting nothing is read of the queue and nothing is published.
 *
 * The counter is left as it is, unless the lease never expires: the acquire or extend that set this lease
 * gave the counter an expiry of the lease plus the grace, which already outlives this release by the
 * grace. Only a lease without an end left a counter without one; it gets the grace now (PTTL tells which).
 * An uncontended release is then four commands instead of six (Redis time in the scripts per acquire +
 * release cycle, paired: 17.1 -> 14.9 us).
 */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local endless = redis.call('PTTL', KEYS[1]) == -1
if redis.call('EXISTS', KEYS[3], KEYS[4]) == 0 then
  if endless then
    ${READ_FENCE_LUA}
    redis.call('DEL', KEYS[1])
    if fence > 0 then
      -- keep_fence(KEYS[2], fence, 0, grace), inline
      local time = redis.call('TIME')
      local ahead = math.ceil((fence - tonumber(time[1]) * 1000000 - tonumber(time[2])) / 1000)
      redis.call('PEXPIRE', KEYS[2], string.format('%d', tonumber(ARGV[3]) + math.max(0, ahead)))
    end
    return 1
  end
  redis.call('DEL', KEYS[1])
  return 1
end
${CLOCK_LUA}${FENCE_LUA}${QUEUE_LUA}
check_queue(KEYS[3], KEYS[4], KEYS[5])
local fence = 0
if endless then fence = read_fence(KEYS[2]) end
redis.call('DEL', KEYS[1])
keep_fence(KEYS[2], fence, 0, tonumber(ARGV[3]))
announce_next(KEYS[3], KEYS[4], KEYS[5], ARGV[2], now_ms())
return 1
`

/**
 * KEYS: lock, fence. ARGV: owner, ttl, grace. Returns 1 if `owner` held the lock and its lease is reset,
 * else 0. The counter's expiry follows the lease.
 */
export const EXTEND_SCRIPT = `${CLOCK_LUA}${FENCE_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local fence = read_fence(KEYS[2])
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  keep_fence(KEYS[2], fence, tonumber(ARGV[2]), tonumber(ARGV[3]))
end
return 1
`

/**
 * KEYS: lock, fence, queue, queue leases, queue inboxes. ARGV: channel, grace. Deletes the lock whoever holds it and
 * announces the first live waiter, as a release does; the counter stays for the grace. A free lock is
 * left as it is. Returns 1.
 */
export const FORCE_RELEASE_SCRIPT = `${CLOCK_LUA}${FENCE_LUA}
if not redis.call('GET', KEYS[1]) then
  return 1
end
local fence = read_fence(KEYS[2])
if redis.call('EXISTS', KEYS[3], KEYS[4]) == 0 then
  redis.call('DEL', KEYS[1])
  keep_fence(KEYS[2], fence, 0, tonumber(ARGV[2]))
  return 1
end
${QUEUE_LUA}
check_queue(KEYS[3], KEYS[4], KEYS[5])
redis.call('DEL', KEYS[1])
keep_fence(KEYS[2], fence, 0, tonumber(ARGV[2]))
announce_next(KEYS[3], KEYS[4], KEYS[5], ARGV[1], now_ms())
return 1
`

/**
 * KEYS: lock, queue, queue leases, queue inboxes. ARGV: owner, channel. Removes owner's place, if it has one. If it was
 * the first live waiter and the lock is free, nobody else would be told to try: the next live waiter is
 * announced. Returns 1 if a live place was removed, else 0.
 */
export const LEAVE_QUEUE_SCRIPT = `${CLOCK_LUA}${QUEUE_LUA}
local owner = ARGV[1]
local holder = redis.call('GET', KEYS[1])
check_queue(KEYS[2], KEYS[3], KEYS[4])
local now = now_ms()
drop_dead(KEYS[2], KEYS[3], KEYS[4], now)
local was_first = first_waiter(KEYS[2]) == owner
if leave_place(KEYS[2], KEYS[3], KEYS[4], owner, now) == 0 then
  return 0
end
if was_first and not holder then
  announce_next(KEYS[2], KEYS[3], KEYS[4], ARGV[2], now)
end
return 1
`
