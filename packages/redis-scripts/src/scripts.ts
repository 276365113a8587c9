/**
 * The Lua scripts behind every lock operation, shared by @verrou/redis and @verrou/upstash (which bundles
 * this file). Each runs atomically on the server, so the server's clock (PX) decides expiry and no other
 * client can act between the ownership check and the write. Kept free of imports so either package can
 * bundle it without a dependency.
 *
 * A ttl argument is a whole number of milliseconds, or '' for a lease that never expires. A channel
 * argument is where releases are announced, or '' to announce nothing (no store listens).
 */

/**
 * KEYS: lock, fence. ARGV: owner, ttl. Returns {1, fencingToken} or {0, pttl of the holder's lease}.
 * The counter is incremented before the lock is written, so a failing INCR (say, a foreign value in the
 * fence key) leaves nothing behind; it is never deleted, so tokens keep rising across release and expiry.
 */
export const ACQUIRE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local token = redis.call('INCR', KEYS[2])
if ARGV[2] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return {1, token}
`

/** KEYS: lock. ARGV: owner, channel. Returns 1 if `owner` held the lock and it is now released, else 0. */
export const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], '')
end
return 1
`

/** KEYS: lock. ARGV: owner, ttl. Returns 1 if `owner` held the lock and its lease is reset, else 0. */
export const EXTEND_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`

/** KEYS: lock. ARGV: channel. Deletes the lock whoever holds it; the fence counter stays. Returns 1. */
export const FORCE_RELEASE_SCRIPT = `
if redis.call('DEL', KEYS[1]) == 1 and ARGV[1] ~= '' then
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
  throw new Error(`unexpected reply to the acquire script: ${describeReply(reply)}`)
}

/** Reads the 0/1 reply of RELEASE_SCRIPT and EXTEND_SCRIPT. */
export function parseFlagReply(reply: unknown, script: string): boolean {
  if (reply === 1) return true
  if (reply === 0) return false
  throw new Error(`unexpected reply to the ${script} script: ${describeReply(reply)}`)
}

/** Reads the reply of EXISTS on one key. */
export function parseExistsReply(reply: unknown): boolean {
  if (reply === 1) return true
  if (reply === 0) return false
  throw new Error(`unexpected reply to EXISTS: ${describeReply(reply)}`)
}

function describeReply(reply: unknown): string {
  try {
    return JSON.stringify(reply) ?? String(reply)
  } catch {
    return String(reply)
  }
}
