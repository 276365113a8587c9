import { E_INVALID_ARGUMENT } from './errors.js'
import { validateKeyOrOwner } from './key_and_owner.js'
import type { LockKind } from './shared_mode_store.js'

/** What `Lock.serialize()` writes: enough for another process to act as the same owner. */
export interface SerializedLock {
  /** Absent in locks serialized before semaphores existed: those are mutexes. */
  kind: LockKind
  /** A permit's limit; `null` for every other kind. */
  limit: number | null
  key: string
  owner: string
  ttl: number | null
  /** Whether the lock was held when serialized. */
  held: boolean
  /** Local lease estimate (epoch ms) when held; `null` when not held or never expiring. */
  expiresAt: number | null
  fencingToken: number | null
}

/**
 * 1: mutexes (older versions wrote no `kind`). 2: permits, readers and writers, so that a version of core
 * that knows nothing of them refuses to restore one (as a mutex it would act on the wrong lock) instead of
 * guessing.
 */
const MUTEX_FORMAT = 1
const SHARED_FORMAT = 2
const SHARED_KINDS: readonly string[] = ['permit', 'read', 'write']

export function serializeLock(state: SerializedLock): string {
  return JSON.stringify({ v: state.kind === 'lock' ? MUTEX_FORMAT : SHARED_FORMAT, ...state })
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
  if (v !== MUTEX_FORMAT && v !== SHARED_FORMAT) throw invalid(`unknown format version ${JSON.stringify(v)}`)
  const { kind, limit } = parseKind(record, v)
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
  return { kind, limit, key, owner, ttl, held, expiresAt, fencingToken }
}

/** `kind` and `limit`, checked against the format version: a mutex in 1, a shared kind in 2. */
function parseKind(record: Record<string, unknown>, version: number): { kind: LockKind; limit: number | null } {
  const { kind = 'lock', limit = null } = record
  if (version === MUTEX_FORMAT) {
    if (kind !== 'lock') throw invalid(`"kind" must be "lock" in format 1, got ${describeKind(kind)}`)
    if (limit !== null) throw invalid('"limit" must be null for a lock')
    return { kind, limit }
  }
  if (typeof kind !== 'string' || !SHARED_KINDS.includes(kind)) {
    throw invalid(`"kind" must be "permit", "read" or "write", got ${describeKind(kind)}`)
  }
  if (kind === 'permit') {
    if (!(typeof limit === 'number' && Number.isSafeInteger(limit) && limit > 0)) {
      throw invalid('"limit" of a permit must be a positive whole number')
    }
    return { kind, limit }
  }
  if (limit !== null) throw invalid(`"limit" must be null for a ${kind} lock`)
  return { kind: kind as LockKind, limit: null }
}

function describeKind(kind: unknown): string {
  return typeof kind === 'string' ? JSON.stringify(kind.slice(0, 40)) : typeof kind
}

function invalid(reason: string): E_INVALID_ARGUMENT {
  return new E_INVALID_ARGUMENT(`Cannot restore lock: ${reason}`)
}
