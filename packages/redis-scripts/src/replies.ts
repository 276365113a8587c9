/**
 * Reading what the scripts (scripts.ts) and EXISTS reply. Anything of another shape is a backend fault
 * and throws: a malformed reply must never pass for "not acquired" or "not owned".
 */

export type AcquireReply = { acquired: true; fencingToken: number } | { acquired: false; expiresIn?: number; position?: number }

/** The ttl argument of ACQUIRE_SCRIPT and EXTEND_SCRIPT. */
export function ttlArgument(ttl: number | null): string {
  return ttl === null ? '' : String(ttl)
}

/**
 * Reads the reply of ACQUIRE_SCRIPT (and of the shared one): a grant is the fencing token alone (one
 * integer, the cheapest reply to send and read), a refusal an array. `waiting`: the call passed a place
 * lease, so a refusal must carry the caller's position; without one, it must not. `numbered`: a refusal
 * with a position also carries the place's number (the mutex script: see `placeNumber`).
 */
export function parseAcquireReply(reply: unknown, waiting: boolean, numbered = false): AcquireReply {
  if (typeof reply === 'number') {
    if (Number.isSafeInteger(reply) && reply > 0) return { acquired: true, fencingToken: reply }
  } else if (Array.isArray(reply) && reply.length === (waiting ? (numbered ? 3 : 2) : 1)) {
    const [pttl, position, place] = reply as unknown[]
    if (Number.isInteger(pttl) && (pttl as number) >= -2) {
      // PTTL is -1 for a lease without expiry and -2 for a free lock a waiter goes first on: no end known.
      // A lease near Number.MAX_SAFE_INTEGER ms can reach JavaScript rounded up to 2^53 (ioredis 6 does so):
      // what is left of it is then capped at the largest safe integer, never refused as a malformed reply.
      const left = Math.min(pttl as number, Number.MAX_SAFE_INTEGER)
      const refused: AcquireReply = left >= 0 ? { acquired: false, expiresIn: left } : { acquired: false }
      if (!waiting) return refused
      const placeOk = !numbered || (Number.isSafeInteger(place) && (place as number) > 0)
      if (Number.isSafeInteger(position) && (position as number) >= 0 && placeOk)
        return { ...refused, position: position as number }
    }
  }
  throw new Error(`unexpected reply to the acquire script: ${describeValue(reply)}`)
}

/** The place number of a refusal `parseAcquireReply(reply, true, true)` accepted. */
export function placeNumber(reply: unknown): number {
  return (reply as number[])[2] as number
}

/** Reads the 0/1 reply of RELEASE_SCRIPT, EXTEND_SCRIPT and LEAVE_QUEUE_SCRIPT. */
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
