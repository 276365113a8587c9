import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKey, validateOwner } from './key_and_owner.js'

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
  if (typeof key !== 'string' || key.length === 0) throw invalid('"key" must be a non-empty string')
  try {
    validateKey(key)
  } catch {
    throw invalid('"key" must be well-formed Unicode')
  }
  if (typeof owner !== 'string' || owner.length === 0) throw invalid('"owner" must be a non-empty string')
  try {
    validateOwner(owner)
  } catch {
    throw invalid('"owner" must be well-formed Unicode')
  }
  if (ttl !== null && !(typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl > 0)) {
    throw invalid('"ttl" must be a positive whole number of milliseconds or null')
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
