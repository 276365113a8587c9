import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import { errors, type SharedMode } from '@verrou/core'
import { numberOf, STORE_NAME } from './attributes.js'

/**
 * The attributes of a shared key's item (besides `pk`, `ttl`, `fencingToken` and `lastWrite`, which mean
 * what they mean on a mutex item). The writer is kept apart from the readers so that a single condition
 * can say "no live writer" (`writerEnd <= stale`) without reading the readers.
 */
export const SHARED = {
  /** The exclusive holder's owner id; absent when there is none. */
  writer: 'writer',
  /** End of the writer's lease, epoch ms on the clock of the client that wrote it; absent: never ends. */
  writerEnd: 'writerEnd',
  /**
   * Shared holders (readers and permits): owner id -> `{ leaseEnd?: N }` (no `leaseEnd`: never ends).
   * Present, possibly empty, once any guarded write touched the item, so one request can add a reader by path.
   */
  readers: 'readers',
  /** Waiters: owner id -> `{ order, leaseEnd, exclusive, limit }` (rank, place lease end, what it asks for). */
  queue: 'queue',
  leaseEnd: 'leaseEnd',
  order: 'order',
  exclusive: 'exclusive',
  limit: 'limit',
} as const

export interface Holding {
  owner: string
  /** `undefined`: a lease that never ends. */
  leaseEnd: number | undefined
}

export interface SharedPlace {
  owner: string
  order: number
  leaseEnd: number
  exclusive: boolean
  limit: number | null
}

/** A shared key's item, decoded. A malformed attribute is a storage error, never an empty state. */
export interface SharedState {
  writer: Holding | undefined
  readers: Holding[]
  /** In FIFO order. */
  places: SharedPlace[]
  hasReadersMap: boolean
  hasQueueMap: boolean
  ttl: number | undefined
}

export function decodeShared(item: Record<string, AttributeValue>, key: string): SharedState {
  const malformed = (attribute: string) =>
    errors.E_LOCK_STORAGE_ERROR.from(item[attribute], {
      operation: 'read shared lock',
      key,
      store: STORE_NAME,
      detail: `the item's "${attribute}" attribute is malformed`,
    })
  let writer: Holding | undefined
  if (item[SHARED.writer] !== undefined) {
    const owner = item[SHARED.writer]?.S
    if (owner === undefined) throw malformed(SHARED.writer)
    const end = item[SHARED.writerEnd]
    const leaseEnd = end === undefined ? undefined : numberOf(end)
    if (end !== undefined && leaseEnd === undefined) throw malformed(SHARED.writerEnd)
    writer = { owner, leaseEnd }
  }
  const readersMap = item[SHARED.readers]
  if (readersMap !== undefined && readersMap.M === undefined) throw malformed(SHARED.readers)
  const readers: Holding[] = []
  for (const [owner, value] of Object.entries(readersMap?.M ?? {})) {
    if (value.M === undefined) throw malformed(SHARED.readers)
    const end = value.M[SHARED.leaseEnd]
    const leaseEnd = end === undefined ? undefined : numberOf(end)
    if (end !== undefined && leaseEnd === undefined) throw malformed(SHARED.readers)
    readers.push({ owner, leaseEnd })
  }
  const queueMap = item[SHARED.queue]
  if (queueMap !== undefined && queueMap.M === undefined) throw malformed(SHARED.queue)
  const places: SharedPlace[] = []
  for (const [owner, value] of Object.entries(queueMap?.M ?? {})) {
    const order = numberOf(value.M?.[SHARED.order])
    const leaseEnd = numberOf(value.M?.[SHARED.leaseEnd])
    const exclusive = value.M?.[SHARED.exclusive]?.BOOL
    const limitValue = value.M?.[SHARED.limit]
    const limit = limitValue?.NULL === true ? null : numberOf(limitValue)
    if (order === undefined || leaseEnd === undefined || exclusive === undefined || limit === undefined) {
      throw malformed(SHARED.queue)
    }
    places.push({ owner, order, leaseEnd, exclusive, limit })
  }
  places.sort((a, b) => a.order - b.order)
  return {
    writer,
    readers,
    places,
    hasReadersMap: readersMap !== undefined,
    hasQueueMap: queueMap !== undefined,
    ttl: numberOf(item.ttl),
  }
}

/** Whether a lease is still running for others: over only once it has been over for the allowance (`stale`). */
export function isLive(leaseEnd: number | undefined, stale: number): boolean {
  return leaseEnd === undefined || leaseEnd > stale
}

/** What the grant rule of `SharedLockStore` says for `owner` asking with `mode`, judged at `stale`. */
export interface Verdict {
  granted: boolean
  /** Live holders that stand in the way (for `expiresIn`). */
  blocking: Holding[]
  livePlaces: SharedPlace[]
}

export function judge(state: SharedState, owner: string, mode: SharedMode, stale: number): Verdict {
  const writer = state.writer !== undefined && isLive(state.writer.leaseEnd, stale) ? state.writer : undefined
  const readers = state.readers.filter((reader) => isLive(reader.leaseEnd, stale))
  const livePlaces = state.places.filter((place) => place.leaseEnd > stale)
  const holdsAlready = writer?.owner === owner || readers.some((reader) => reader.owner === owner)
  const mine = livePlaces.findIndex((place) => place.owner === owner)
  const ahead = mine === -1 ? livePlaces : livePlaces.slice(0, mine)
  if (holdsAlready) return { granted: false, blocking: [], livePlaces }
  if (mode.exclusive) {
    const blocking = writer === undefined ? readers : [writer, ...readers]
    return { granted: blocking.length === 0 && ahead.length === 0, blocking, livePlaces }
  }
  if (writer !== undefined) return { granted: false, blocking: [writer], livePlaces }
  const writerAhead = ahead.some((place) => place.exclusive)
  // Without a writer ahead, every place ahead is a shared one, and counts against the limit.
  const full = mode.limit !== null && readers.length + ahead.length >= mode.limit
  return { granted: !writerAhead && !full, blocking: full ? readers : [], livePlaces }
}

/** `isLocked` of `SharedLockStore`, judged at `stale`. */
export function isLockedFor(state: SharedState, mode: SharedMode, stale: number): boolean {
  const writer = state.writer !== undefined && isLive(state.writer.leaseEnd, stale)
  const readers = state.readers.filter((reader) => isLive(reader.leaseEnd, stale)).length
  if (mode.exclusive) return writer || readers > 0
  return writer || (mode.limit !== null && readers >= mode.limit)
}

export function validateMode(mode: SharedMode): void {
  const valid =
    mode !== null &&
    typeof mode === 'object' &&
    typeof mode.exclusive === 'boolean' &&
    (mode.limit === null || (Number.isSafeInteger(mode.limit) && mode.limit > 0))
  if (!valid) {
    throw new errors.E_INVALID_ARGUMENT('A shared lock mode is { exclusive: boolean, limit: positive integer or null }')
  }
}
