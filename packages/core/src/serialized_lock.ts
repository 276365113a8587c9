import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKeyOrOwner } from './key_and_owner.js'

/** What `Lock.serialize()` writes: enough for another process to act as the same owner. */
export interface SerializedLock {
  key: string
  owner: string
  ttl: number | null
  /** Whether the lock was held when serialized. */
  held: boolean
  /** Local lease estimate (epoch ms) when held; `null` when not held or never expiring. */
  expiresAt: number | null
  fencingToken: number | null
}

const FORMAT_VERSION = 1

export function serializeLock(state: SerializedLock): string {
  return JSON.stringify({ v: FORMAT_VERSION, ...state })
}

/** Parses and validates a serialized lock; anything malformed is an `E_INVALID_ARGUMENT`. */
export function parseSerializedLock(input: unknown): SerializedLock {
  if (typeof input !== 'string') throw invalid(`expected a string from lock.serialize(), got ${typeof input}`)
  let data: unknown
  try {
    data = JSON.parse(input)
  } catch {
    throw invalid('it is not valid JSON')
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw invalid('expected a JSON object')
  const record = data as Record<string, unknown>
  const { v, key, owner, ttl, held, expiresAt, fencingToken } = record
  if (v !== FORMAT_VERSION) throw invalid(`unknown format version ${JSON.stringify(v)}`)
  for (const [what, value] of [
    ['key', key],
    ['owner', owner],
  ] as const) {
    try {
      validateKeyOrOwner(value, what)
    } catch {
      throw invalid(`"${what}" must be a non-empty, well-formed string`)
    }
  }
  if (typeof key !== 'string' || typeof owner !== 'string') throw invalid('"key" and "owner" must be strings')
  if (ttl !== null && !(typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl > 0)) {
    // The same range createLock accepts (see MAX_DURATION_MS), so every lock round-trips.
    throw invalid('"ttl" must be a positive whole number of milliseconds (at most Number.MAX_SAFE_INTEGER) or null')
  }
  if (typeof held !== 'boolean') throw invalid('"held" must be a boolean')
  if (expiresAt !== null && !(typeof expiresAt === 'number' && Number.isFinite(expiresAt))) {
    throw invalid('"expiresAt" must be a number or null')
  }
  if (fencingToken !== null && !(typeof fencingToken === 'number' && Number.isSafeInteger(fencingToken) && fencingToken > 0)) {
    throw invalid('"fencingToken" must be a positive whole number or null')
  }
  return { key, owner, ttl, held, expiresAt, fencingToken }
}

function invalid(reason: string): E_INVALID_ARGUMENT {
  return new E_INVALID_ARGUMENT(`Cannot restore lock: ${reason}`)
}
