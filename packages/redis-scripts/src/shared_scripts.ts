/**
 * The Lua scripts behind semaphores and read-write locks (`SharedLockStore`), one per operation, shared by
 * @verrou/redis and @verrou/upstash. Each is atomic on the server, so the server's clock decides every
 * lease and the grant rule sees one consistent state. KEYS are always the six of shared_lua.ts (writer,
 * readers, fence, queue order, place leases, place modes), all in one hash slot.
 *
 * Arguments as in scripts.ts: a ttl is whole milliseconds or '' (never expires), a grace how long the
 * fencing counter outlives the last lease, a channel where admitted waiters are named ('' names nobody).
 * A mode argument is `x`, `s` or a limit (see shared_lua.ts).
 *
 * Whatever a script finds ended (a reader's lease, a place's lease) it drops, and then announces the
 * waiters that may now be admitted: so a crashed holder's slot goes to the next waiter as soon as any
 * client looks at the key after its lease ends.
 */

import { CLOCK_LUA, FENCE_LUA } from './lua_helpers.js'
import { SHARED_LUA } from './shared_lua.js'

const PREAMBLE = `${CLOCK_LUA}${FENCE_LUA}${SHARED_LUA}`

/**
 * ARGV: owner, mode, ttl, grace, place lease ('' without wait), channel. Refused if owner holds the key
 * (any mode) or a writer does; otherwise granted under the grant rule (shared_lua.ts `admits`), which
 * removes owner's place. Replies as ACQUIRE_SCRIPT: the fencing token when granted; refused, {pttl} or,
 * with a place lease (owner then joins or keeps its place), {pttl, position}. pttl is how long until the
 * soonest holder's lease ends (-1 never, -2 nobody holds: a waiter goes first).
 */
export const SHARED_ACQUIRE_SCRIPT = `${PREAMBLE}
local owner = ARGV[1]
local exclusive, limit = parse_mode(ARGV[2])
local fence = check_keys()
if fence >= 9007199254740991 then
  error('the fencing counter ' .. KEYS[3] .. ' is past the largest safe integer')
end
local now = now_us()
local now_ms = math.floor(now / 1000)
local dropped = drop_expired(now_ms)
local writer = redis.call('GET', KEYS[1])
local granted = false
if not writer and not redis.call('ZSCORE', KEYS[2], owner) then
  local ahead = redis.call('ZRANK', KEYS[4], owner) or redis.call('ZCARD', KEYS[4])
  granted = admits(exclusive, limit, redis.call('ZCARD', KEYS[2]), ahead)
end
if granted then
  leave_place(owner, now_ms)
  if exclusive then
    if ARGV[3] == '' then
      redis.call('SET', KEYS[1], owner)
    else
      redis.call('SET', KEYS[1], owner, 'PX', ARGV[3])
    end
  else
    local lease_end = '+inf'
    if ARGV[3] ~= '' then lease_end = whole(now_ms + tonumber(ARGV[3])) end
    redis.call('ZADD', KEYS[2], lease_end, owner)
    keep_readers(now_ms)
  end
  local token = math.max(fence + 1, now)
  redis.call('SET', KEYS[3], whole(token))
  keep_shared_fence(token, now, tonumber(ARGV[4]))
  if dropped > 0 then announce(ARGV[6]) end
  return token
end
local reply = {soonest_end(now_ms)}
if ARGV[5] ~= '' then reply[2] = take_place(owner, ARGV[2], tonumber(ARGV[5]), now_ms) end
if dropped > 0 then announce(ARGV[6]) end
return reply
`

/**
 * ARGV: owner, mode, grace, channel. Ends owner's holding if it holds with the exclusivity of mode and
 * its lease has not ended; returns 1 if it did, else 0. Then names the waiters now admitted.
 */
export const SHARED_RELEASE_SCRIPT = `${PREAMBLE}
local owner = ARGV[1]
local exclusive = parse_mode(ARGV[2])
local fence = check_keys()
local now = now_us()
local now_ms = math.floor(now / 1000)
local dropped = drop_expired(now_ms)
local released = 0
if exclusive then
  if redis.call('GET', KEYS[1]) == owner then released = redis.call('DEL', KEYS[1]) end
else
  released = redis.call('ZREM', KEYS[2], owner)
  keep_readers(now_ms)
end
if released == 1 then keep_shared_fence(fence, now, tonumber(ARGV[3])) end
if released == 1 or dropped > 0 then announce(ARGV[4]) end
return released
`

/**
 * ARGV: owner, mode, ttl, grace. Resets owner's lease to ttl from now if it holds with the exclusivity of
 * mode and its lease has not ended; returns 1 if it did, else 0. The counter's expiry follows.
 */
export const SHARED_EXTEND_SCRIPT = `${PREAMBLE}
local owner = ARGV[1]
local exclusive = parse_mode(ARGV[2])
local fence = check_keys()
local now = now_us()
local now_ms = math.floor(now / 1000)
if exclusive then
  if redis.call('GET', KEYS[1]) ~= owner then return 0 end
  if ARGV[3] == '' then
    redis.call('PERSIST', KEYS[1])
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
else
  if not is_live(redis.call('ZSCORE', KEYS[2], owner), now_ms) then return 0 end
  local lease_end = '+inf'
  if ARGV[3] ~= '' then lease_end = whole(now_ms + tonumber(ARGV[3])) end
  redis.call('ZADD', KEYS[2], 'XX', lease_end, owner)
  keep_readers(now_ms)
end
keep_shared_fence(fence, now, tonumber(ARGV[4]))
return 1
`

/**
 * ARGV: mode, grace, channel. Exclusive: ends the writer's holding; shared: every reader's. Names the
 * waiters now admitted. Returns 1.
 */
export const SHARED_FORCE_RELEASE_SCRIPT = `${PREAMBLE}
local exclusive = parse_mode(ARGV[1])
local fence = check_keys()
local now = now_us()
local now_ms = math.floor(now / 1000)
local dropped = drop_expired(now_ms)
local ended
if exclusive then
  ended = redis.call('DEL', KEYS[1])
else
  ended = redis.call('DEL', KEYS[2])
end
if ended == 1 then keep_shared_fence(fence, now, tonumber(ARGV[2])) end
if ended == 1 or dropped > 0 then announce(ARGV[3]) end
return 1
`

/**
 * ARGV: mode. Exclusive: 1 if anyone holds; shared: 1 if a writer holds or, with a limit, at least limit
 * readers do; else 0. Reads only.
 */
export const SHARED_IS_LOCKED_SCRIPT = `${CLOCK_LUA}${FENCE_LUA}${SHARED_LUA}
local exclusive, limit = parse_mode(ARGV[1])
check_keys()
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local readers = redis.call('ZCOUNT', KEYS[2], '(' .. whole(now_ms()), '+inf')
if exclusive then
  if readers > 0 then return 1 end
elseif limit ~= nil and readers >= limit then
  return 1
end
return 0
`

/**
 * ARGV: owner, channel. Removes owner's place, if it has one, and names the waiters now admitted. Returns
 * 1 if a live place was removed, else 0.
 */
export const SHARED_LEAVE_QUEUE_SCRIPT = `${PREAMBLE}
check_keys()
local now = now_ms()
local dropped = drop_expired(now)
local removed = leave_place(ARGV[1], now)
if removed == 1 or dropped > 0 then announce(ARGV[2]) end
return removed
`
