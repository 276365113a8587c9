/**
 * Lua the lock scripts share (scripts.ts): the server clock, the fencing counter and the wait queue.
 * Kept free of imports so either store can bundle it without a dependency.
 */

/**
 * The server's clock (TIME: Redis 5 and later replicate scripts by their effects, so a script may read it).
 * Numbers go back to Redis through string.format('%d'): Lua would write a large one as 1.7e+15.
 */
export const CLOCK_LUA = `
local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local function now_ms()
  return math.floor(now_us() / 1000)
end
local function whole(number)
  return string.format('%d', number)
end
`

/**
 * Tokens come from the counter, but never fall below the server's clock in microseconds. So the counter
 * may expire once its key has been unused for the grace: a counter created anew starts from the clock,
 * above every token the old one gave out.
 *
 * The counter's expiry is the grace after the lock's own, plus however far the counter has run ahead of
 * the clock: an expired counter's last token is then always below the clock that the next one starts
 * from. For a lease that never expires it is the grace after the grant (or the extend): the counter may
 * then expire while the lock is held, but nobody else can take a token until it is released, and by
 * then the clock has passed the last token by the grace, as after any other lease.
 *
 * read_fence reads the counter (0 when there is none) and fails on anything but a whole number: scripts
 * call it before their first write, so a foreign value there changes nothing.
 */
export const FENCE_LUA = `
local function read_fence(key)
  local value = redis.call('GET', key)
  if not value then return 0 end
  local number = tonumber(value)
  if number == nil or number < 0 or number ~= math.floor(number) then
    error('the fencing counter ' .. key .. ' holds something other than a whole number')
  end
  return number
end
local function fence_expiry(token, now, lease, grace)
  return whole(grace + math.max(lease, math.ceil((token - now) / 1000)))
end
local function keep_fence(key, token, lease, grace)
  if token > 0 then redis.call('PEXPIRE', key, fence_expiry(token, now_us(), lease, grace)) end
end
`

/**
 * read_fence as a block, for the mutex scripts' first lines: reads the counter at KEYS[2] into the local
 * `fence`, with the same checks. Not a function: a script defines its functions anew on every call, so
 * the uncontended path of each script defines none (see scripts.ts).
 */
export const READ_FENCE_LUA = `
local fence = 0
local fence_value = redis.call('GET', KEYS[2])
if fence_value then
  fence = tonumber(fence_value)
  if fence == nil or fence < 0 or fence ~= math.floor(fence) then
    error('the fencing counter ' .. KEYS[2] .. ' holds something other than a whole number')
  end
end
`

/** Dead places are dropped in batches of this many: Lua's unpack() has a limit on how many it spreads. */
const DROP_BATCH = 500

/**
 * The wait queue of a key is two sorted sets and a hash in the lock's hash slot: `order` (owner -> the
 * number it joined with: FIFO), `leases` (owner -> when its place lease ends, in ms on the server clock)
 * and `inboxes` (owner -> the channel its process listens on, for the waiters of a store that has one). A
 * place whose lease has ended is dead: every script that reads the queue first drops all dead places (found
 * by score in `leases`, however deep in the queue), so the first member of `order` is the first live
 * waiter and a rank is a position among live waiters. All three expire when the last place lease ends.
 *
 * The next waiter is announced on its process's inbox, so a release wakes that one process only; a waiter
 * with no inbox is announced on the key's channel, which every process waiting on the key hears.
 */
export const QUEUE_LUA = `
local function check_queue(order, leases, inboxes)
  -- Reads before any write: a key of another type fails the script here, with nothing changed.
  redis.call('ZCARD', order)
  redis.call('ZCARD', leases)
  redis.call('HLEN', inboxes)
end
local function drop_dead(order, leases, inboxes, now)
  while true do
    local dead = redis.call('ZRANGEBYSCORE', leases, '-inf', whole(now), 'LIMIT', 0, ${DROP_BATCH})
    if #dead == 0 then return end
    redis.call('ZREM', order, unpack(dead))
    redis.call('ZREM', leases, unpack(dead))
    redis.call('HDEL', inboxes, unpack(dead))
    if #dead < ${DROP_BATCH} then return end
  end
end
local function first_waiter(order)
  return redis.call('ZRANGE', order, 0, 0)[1]
end
local function keep_queue(order, leases, inboxes, now)
  local last = redis.call('ZRANGE', leases, -1, -1, 'WITHSCORES')
  if last[2] then
    local left = whole(math.max(1, tonumber(last[2]) - now))
    redis.call('PEXPIRE', order, left)
    redis.call('PEXPIRE', leases, left)
    redis.call('PEXPIRE', inboxes, left)
  end
end
-- A place's number orders the queue and names the place: one past the last, and never below the clock in
-- microseconds, so a number is not given to a place again once its queue has gone (see hand_over).
-- Returns owner's 0-based rank among the live waiters and its place's number.
local function take_place(order, leases, inboxes, owner, lease, inbox, now_micros)
  local now = math.floor(now_micros / 1000)
  local number = redis.call('ZSCORE', order, owner)
  if not number then
    local last = redis.call('ZRANGE', order, -1, -1, 'WITHSCORES')
    number = now_micros
    if last[2] then number = math.max(tonumber(last[2]) + 1, now_micros) end
    redis.call('ZADD', order, whole(number), owner)
  end
  redis.call('ZADD', leases, whole(now + lease), owner)
  if inbox == '' then
    redis.call('HDEL', inboxes, owner)
  else
    redis.call('HSET', inboxes, owner, inbox)
  end
  keep_queue(order, leases, inboxes, now)
  return redis.call('ZRANK', order, owner), tonumber(number)
end
local function leave_place(order, leases, inboxes, owner, now)
  local removed = redis.call('ZREM', order, owner)
  redis.call('ZREM', leases, owner)
  redis.call('HDEL', inboxes, owner)
  if removed == 1 then keep_queue(order, leases, inboxes, now) end
  return removed
end
-- On an inbox the message names the key's channel too, as <its length in bytes>:<channel><owner>.
local function announce_next(order, leases, inboxes, channel, now)
  if channel == '' then return end
  drop_dead(order, leases, inboxes, now)
  local next = first_waiter(order)
  if not next then return end
  local inbox = redis.call('HGET', inboxes, next)
  if inbox then
    redis.call('PUBLISH', inbox, string.len(channel) .. ':' .. channel .. next)
  else
    redis.call('PUBLISH', channel, next)
  end
end
`

/**
 * What the lock key holds while a release has handed the lock to a waiter that has not claimed it yet:
 * this byte, then the waiter's owner id. No UTF-8 string contains the byte 0xFF, so the value is never an
 * owner's own: only that waiter's acquire, extend, release or leave recognises it.
 */
export const HANDED_MARK_LUA = "'\\255'"

/**
 * A store whose inbox (the channel it records with its waiters' places) begins with this reads a
 * hand-over from the message it gets there. A waiter of any other store (an older version, or one with
 * no inbox) is announced and takes the lock with its own acquire, as before.
 */
export const HEIR_INBOX_PREFIX = 'verrou:heir:'

/**
 * hand_over: instead of freeing the lock, make the first live waiter its holder, when that waiter's store
 * reads hand-overs (see HEIR_INBOX_PREFIX). The lock then holds HANDED_MARK .. heir, expiring when the
 * heir's place lease would have (its claim window: a dead heir holds up the next waiter no longer than its
 * dead place would have), with the next fencing token; the heir's place leaves the queue; and the heir's
 * inbox gets `<token>,<place number>,` before the usual announcement, so its store answers the heir's next
 * acquire at once. The place number ties the grant to that very place: a message heard late, once the
 * waiter has left and queued again, names a place it no longer has.
 * `fence` is the counter as the caller read it, before its first write. Returns whether it handed over.
 * Needs CLOCK_LUA, FENCE_LUA and QUEUE_LUA.
 */
export const HAND_OVER_LUA = `
local function hand_over(lock, fence_key, order, leases, inboxes, channel, grace, fence, skip)
  if channel == '' then return false end
  local now = now_us()
  local now_millis = math.floor(now / 1000)
  drop_dead(order, leases, inboxes, now_millis)
  local heir = first_waiter(order)
  if not heir or heir == skip then return false end
  local inbox = redis.call('HGET', inboxes, heir)
  if not inbox or string.sub(inbox, 1, ${HEIR_INBOX_PREFIX.length}) ~= '${HEIR_INBOX_PREFIX}' then return false end
  if fence >= 9007199254740991 then
    error('the fencing counter ' .. fence_key .. ' is past the largest safe integer')
  end
  local token = math.max(fence + 1, now)
  local window = math.max(1, tonumber(redis.call('ZSCORE', leases, heir)) - now_millis)
  local place = tonumber(redis.call('ZSCORE', order, heir))
  redis.call('SET', lock, ${HANDED_MARK_LUA} .. heir, 'PX', whole(window))
  redis.call('SET', fence_key, whole(token), 'PX', fence_expiry(token, now, window, grace))
  leave_place(order, leases, inboxes, heir, now_millis)
  redis.call('PUBLISH', inbox, whole(token) .. ',' .. whole(place) .. ',' .. string.len(channel) .. ':' .. channel .. heir)
  return true
end
`
