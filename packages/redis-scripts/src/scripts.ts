/**
 * The Lua scripts behind every lock operation, shared by @verrou/redis and @verrou/upstash (which bundles
 * this file). Each runs atomically on the server, so the server's clock (PX) decides expiry and no other
 * client can act between the ownership check and the write. Kept free of imports so either package can
 * bundle it without a dependency.
 *
 * A ttl argument is a whole number of milliseconds, or '' for a lease that never expires. A grace
 * argument is how long, in milliseconds, a fencing counter outlives its lock. A channel argument is
 * where releases are announced, or '' to announce nothing (no store listens).
 */

/**
 * Lua shared by the scripts that touch the fencing counter. Tokens come from the counter, but never
 * fall below the server's clock in microseconds (TIME: Redis 5 and later replicate scripts by their
 * effects, so a script may read the clock). So the counter may expire once its key has been unused for
 * the grace: a counter created anew starts from the clock, above every token the old one gave out.
 *
 * The counter's expiry is the grace after the lock's own (none while a lease that never expires is
 * held), plus however far the counter has run ahead of the clock: an expired counter's last token is
 * then always below the clock that the next one starts from.
 */
const FENCE_LUA = `
local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
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
  return string.format('%d', grace + math.max(lease, math.ceil((token - now) / 1000)))
end
local function keep_fence(key, lease, grace)
  local token = read_fence(key)
  if token > 0 then redis.call('PEXPIRE', key, fence_expiry(token, now_us(), lease, grace)) end
end
`

/**
 * KEYS: lock, fence. ARGV: owner, ttl, grace. Returns {1, fencingToken} or {0, pttl of the holder's lease}.
 * GET, not EXISTS, on the lock: another application's hash or list there is a WRONGTYPE error, never
 * "held". The counter is read and checked before anything is written, so a failure leaves nothing behind.
 */
export const ACQUIRE_SCRIPT = `${FENCE_LUA}
if redis.call('GET', KEYS[1]) then
  return {0, redis.call('PTTL', KEYS[1])}
end
local now = now_us()
local token = math.max(read_fence(KEYS[2]) + 1, now)
if token > 9007199254740991 then
  error('the fencing counter ' .. KEYS[2] .. ' is past the largest safe integer')
end
local grace = tonumber(ARGV[3])
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], string.format('%d', token))
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], string.format('%d', token), 'PX', fence_expiry(token, now, tonumber(ARGV[2]), grace))
end
return {1, token}
`

/**
 * KEYS: lock, fence. ARGV: owner, channel, grace. Returns 1 if `owner` held the lock and it is now
 * released, else 0. The counter stays for the grace.
 */
export const RELEASE_SCRIPT = `${FENCE_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
keep_fence(KEYS[2], 0, tonumber(ARGV[3]))
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], '')
end
return 1
`

/**
 * KEYS: lock, fence. ARGV: owner, ttl, grace. Returns 1 if `owner` held the lock and its lease is reset,
 * else 0. The counter's expiry follows the lease.
 */
export const EXTEND_SCRIPT = `${FENCE_LUA}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  keep_fence(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]))
end
return 1
`

/**
 * KEYS: lock, fence. ARGV: channel, grace. Deletes the lock whoever holds it; the counter stays for the
 * grace. GET first: another application's value of another type is an error, not something to delete.
 * Returns 1.
 */
export const FORCE_RELEASE_SCRIPT = `${FENCE_LUA}
if not redis.call('GET', KEYS[1]) then
  return 1
end
redis.call('DEL', KEYS[1])
keep_fence(KEYS[2], 0, tonumber(ARGV[2]))
if ARGV[1] ~= '' then
  redis.call('PUBLISH', ARGV[1], '')
end
return 1
`

/** The ttl argument of ACQUIRE_SCRIPT and EXTEND_SCRIPT. */
export function ttlArgument(ttl: number | null): string {
  return ttl === null ? '' : String(ttl)
}

export type AcquireReply = { acquired: true; fencingToken: number } | { acquired: false; expiresIn?: number }

/**
 * Reads the reply of ACQUIRE_SCRIPT. Anything else is a backend fault and throws: a malformed reply
 * must never pass for "not acquired".
 */
export function parseAcquireReply(reply: unknown): AcquireReply {
  if (Array.isArray(reply) && reply.length === 2) {
    const [flag, value] = reply as [unknown, unknown]
    if (flag === 1 && Number.isSafeInteger(value) && (value as number) > 0) {
      return { acquired: true, fencingToken: value as number }
    }
    if (flag === 0 && Number.isSafeInteger(value)) {
      // PTTL is -1 for a lease without expiry: then nobody knows when it ends.
      return (value as number) >= 0 ? { acquired: false, expiresIn: value as number } : { acquired: false }
    }
  }
  throw new Error(`unexpected reply to the acquire script: ${describeValue(reply)}`)
}

/** Reads the 0/1 reply of RELEASE_SCRIPT and EXTEND_SCRIPT. */
export function parseFlagReply(reply: unknown, script: string): boolean {
  if (reply === 1) return true
  if (reply === 0) return false
  throw new Error(`unexpected reply to the ${script} script: ${describeValue(reply)}`)
}

/** Reads the reply of EXISTS on one key. */
export function parseExistsReply(reply: unknown): boolean {
  if (reply === 1) return true
  if (reply === 0) return false
  throw new Error(`unexpected reply to EXISTS: ${describeValue(reply)}`)
}

/** A value as error messages show it; never throws, even for what String() cannot convert. */
export function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}
