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

import { CLOCK_LUA, FENCE_LUA, HAND_OVER_LUA, HANDED_MARK_LUA, QUEUE_LUA, READ_FENCE_LUA } from './lua_helpers.js'

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
 * then removed), or if a release handed the lock to owner (see hand_over): the grant is then claimed for
 * ttl, with the token of the hand-over. Otherwise, with a place lease, owner joins the queue at the tail
 * or keeps its place, and the place lease is renewed. Returns the fencing token (a positive integer) when
 * granted; refused, {pttl} without a place lease and {pttl, position, place} with one: pttl is the
 * holder's (-1: never expires; -2: the lock is free, but a waiter goes first), position owner's 0-based
 * rank among the live waiters, place its place's number (see take_place).
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
    local lease = 0
    if ARGV[2] ~= '' then lease = tonumber(ARGV[2]) end
    local expiry = tonumber(ARGV[3]) + math.max(lease, math.ceil((token - now) / 1000))
    redis.call('SET', KEYS[2], string.format('%d', token), 'PX', string.format('%d', expiry))
    return token
  end
  -- A lock handed to owner goes on below, where it is claimed.
  if ARGV[4] == '' and redis.call('GET', KEYS[1]) ~= ${HANDED_MARK_LUA} .. ARGV[1] then
    return {redis.call('PTTL', KEYS[1])}
  end
end
${CLOCK_LUA}${FENCE_LUA}
local owner = ARGV[1]
local function take_lock()
  if ARGV[2] == '' then return redis.call('SET', KEYS[1], owner, 'NX') end
  return redis.call('SET', KEYS[1], owner, 'NX', 'PX', ARGV[2])
end
local lease = 0
if ARGV[2] ~= '' then lease = tonumber(ARGV[2]) end
local function grant(now)
  local token = math.max(fence + 1, now)
  redis.call('SET', KEYS[2], whole(token), 'PX', fence_expiry(token, now, lease, tonumber(ARGV[3])))
  return token
end
${QUEUE_LUA}
local holder = redis.call('GET', KEYS[1])
check_queue(KEYS[3], KEYS[4], KEYS[5])
if holder == ${HANDED_MARK_LUA} .. owner then
  -- Handed to owner by a release, not claimed yet: owner's now, for ttl, with the hand-over's token.
  if ARGV[2] == '' then
    redis.call('SET', KEYS[1], owner)
  else
    redis.call('SET', KEYS[1], owner, 'PX', ARGV[2])
  end
  keep_fence(KEYS[2], fence, lease, tonumber(ARGV[3]))
  return fence
end
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
local position, place = take_place(KEYS[3], KEYS[4], KEYS[5], owner, tonumber(ARGV[4]), ARGV[5], now)
return {pttl, position, place}
`

/**
 * KEYS: lock, fence, queue, queue leases, queue inboxes. ARGV: owner, channel, grace. Returns 1 if `owner`
 * held the lock (or had it handed over, unclaimed) and it is now released, else 0. With nobody waiting
 * nothing is read of the queue and nothing is published. Otherwise the lock goes straight to the first
 * live waiter when its store reads hand-overs (see hand_over), or is freed and that waiter announced by
 * its owner id.
 *
 * The counter is left as it is: the acquire or extend that set this lease gave it an expiry of the lease
 * plus the grace (the grace alone for a lease that never expires: see FENCE_LUA), which already outlives
 * this release by the grace. An uncontended release is then three commands: GET, EXISTS, DEL (Redis time
 * in the scripts per acquire + release cycle, paired: 17.1 -> 14.9 us for dropping the counter's writes,
 * 19.2 -> 17.2 us for dropping the PTTL that told an endless lease apart).
 */
export const RELEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] and holder ~= ${HANDED_MARK_LUA} .. ARGV[1] then
  return 0
end
if redis.call('EXISTS', KEYS[3], KEYS[4]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
${CLOCK_LUA}${FENCE_LUA}${QUEUE_LUA}${HAND_OVER_LUA}
check_queue(KEYS[3], KEYS[4], KEYS[5])
local fence = read_fence(KEYS[2])
if hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[2], tonumber(ARGV[3]), fence, ARGV[1]) then
  return 1
end
redis.call('DEL', KEYS[1])
announce_next(KEYS[3], KEYS[4], KEYS[5], ARGV[2], now_ms())
return 1
`

/**
 * KEYS: lock, fence. ARGV: owner, ttl, grace, token ('' for any). Returns 1 if `owner` held the lock (or
 * had it handed over, unclaimed: it is now owner's own) and its lease is reset, else 0. The counter's
 * expiry follows the lease. With a token, this is the claim of a lock handed over with that token: it
 * counts only while the counter still holds it, that is while no grant has followed that hand-over.
 */
export const EXTEND_SCRIPT = `${CLOCK_LUA}${FENCE_LUA}
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] and holder ~= ${HANDED_MARK_LUA} .. ARGV[1] then
  return 0
end
local fence = read_fence(KEYS[2])
if ARGV[4] ~= '' and fence ~= tonumber(ARGV[4]) then
  return 0
end
if holder ~= ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
  keep_fence(KEYS[2], fence, 0, tonumber(ARGV[3]))
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
 * KEYS: lock, fence, queue, queue leases, queue inboxes. ARGV: owner, channel, grace. Removes owner's
 * place, if it has one. If it was the first live waiter and the lock is free, nobody else would be told to
 * try: the next live waiter is announced. A lock handed to owner and not claimed is given back: handed on
 * or freed, as owner's release would. Returns 1 if a live place or a grant was given up, else 0.
 */
export const LEAVE_QUEUE_SCRIPT = `${CLOCK_LUA}${FENCE_LUA}${QUEUE_LUA}${HAND_OVER_LUA}
local owner = ARGV[1]
local holder = redis.call('GET', KEYS[1])
local fence = read_fence(KEYS[2])
check_queue(KEYS[3], KEYS[4], KEYS[5])
local now = now_ms()
drop_dead(KEYS[3], KEYS[4], KEYS[5], now)
if holder == ${HANDED_MARK_LUA} .. owner then
  leave_place(KEYS[3], KEYS[4], KEYS[5], owner, now)
  if not hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[2], tonumber(ARGV[3]), fence, owner) then
    -- The counter already outlives this lock by the grace: hand_over gave it the window's expiry.
    redis.call('DEL', KEYS[1])
    announce_next(KEYS[3], KEYS[4], KEYS[5], ARGV[2], now)
  end
  return 1
end
local was_first = first_waiter(KEYS[3]) == owner
if leave_place(KEYS[3], KEYS[4], KEYS[5], owner, now) == 0 then
  return 0
end
if was_first and not holder then
  announce_next(KEYS[3], KEYS[4], KEYS[5], ARGV[2], now)
end
return 1
`
