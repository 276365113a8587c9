import type { AcquireResult, SharedMode } from '@verrou/core'

/** One holding of a shared key: its owner, its exclusivity, its lease end (server ms; `null`: never ends). */
export interface Holder {
  owner: string
  exclusive: boolean
  endsAt: number | null
}

/** One place in the FIFO queue of a shared key: it lives until `endsAt` (server ms) unless renewed. */
export interface Place {
  owner: string
  exclusive: boolean
  endsAt: number
}

/** Everything a shared key's row holds besides its fencing counter. */
export interface SharedState {
  holders: Holder[]
  queue: Place[]
}

/** What an operation decided: its answer, and the state to write back (`undefined`: write nothing). */
export interface Decision<T> {
  answer: T
  next: SharedState | undefined
}

export const EMPTY_STATE: SharedState = { holders: [], queue: [] }

/**
 * Stored as compact JSON: `{"h":[[owner, 0|1, endsAt|null], ...], "q":[[owner, 0|1, endsAt], ...]}`.
 * JSON.stringify escapes lone surrogates, so any JS string owner round-trips exactly through UTF-8.
 */
export function encodeState(state: SharedState): Buffer {
  const h = state.holders.map((each) => [each.owner, each.exclusive ? 1 : 0, each.endsAt])
  const q = state.queue.map((each) => [each.owner, each.exclusive ? 1 : 0, each.endsAt])
  return Buffer.from(JSON.stringify({ h, q }), 'utf8')
}

/** Reads what `encodeState` wrote; anything else is a corrupt row, thrown (a storage failure, not an answer). */
export function decodeState(bytes: Buffer | string): SharedState {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8')
  const parsed = JSON.parse(text) as { h?: unknown; q?: unknown }
  if (!Array.isArray(parsed?.h) || !Array.isArray(parsed?.q)) throw new Error('malformed shared lock state')
  const holders = parsed.h.map((entry: unknown): Holder => {
    const [owner, exclusive, endsAt] = entry as [unknown, unknown, unknown]
    if (typeof owner !== 'string' || (endsAt !== null && typeof endsAt !== 'number')) {
      throw new Error('malformed shared lock holder')
    }
    return { owner, exclusive: exclusive === 1, endsAt }
  })
  const queue = parsed.q.map((entry: unknown): Place => {
    const [owner, exclusive, endsAt] = entry as [unknown, unknown, unknown]
    if (typeof owner !== 'string' || typeof endsAt !== 'number') throw new Error('malformed shared lock place')
    return { owner, exclusive: exclusive === 1, endsAt }
  })
  return { holders, queue }
}

/** The state without expired holders and dead places: what every decision looks at, and what gets written. */
export function liveState(state: SharedState, now: number): SharedState {
  return {
    holders: state.holders.filter((each) => each.endsAt === null || each.endsAt > now),
    queue: state.queue.filter((each) => each.endsAt > now),
  }
}

/**
 * When the row may be pruned: the latest end of any live lease or place, `null` while a holder's lease never
 * ends, `now` when nothing lives (prunable at once).
 */
export function stateEndsAt(state: SharedState, now: number): number | null {
  let latest = now
  for (const holder of state.holders) {
    if (holder.endsAt === null) return null
    latest = Math.max(latest, holder.endsAt)
  }
  for (const place of state.queue) latest = Math.max(latest, place.endsAt)
  return latest
}

export interface AcquireRequest {
  owner: string
  mode: SharedMode
  ttl: number | null
  /** Place lease in ms when the caller will keep waiting. */
  lease: number | undefined
}

/**
 * The grant rule of `SharedLockStore` on the live state at `now`. A grant's answer carries no token: the
 * caller adds one to the row's counter.
 */
export function decideAcquire(
  stored: SharedState,
  request: AcquireRequest,
  now: number,
): Decision<{ acquired: true } | Extract<AcquireResult, { acquired: false }>> {
  const state = liveState(stored, now)
  const { owner, mode, ttl, lease } = request
  const ownIndex = state.queue.findIndex((each) => each.owner === owner)
  const ahead = ownIndex === -1 ? state.queue : state.queue.slice(0, ownIndex)
  const holds = state.holders.some((each) => each.owner === owner)
  const writer = state.holders.find((each) => each.exclusive)
  const sharedHolders = state.holders.filter((each) => !each.exclusive)

  let blockers: Holder[] = []
  let granted: boolean
  if (holds) {
    granted = false
  } else if (mode.exclusive) {
    granted = state.holders.length === 0 && ahead.length === 0
    blockers = state.holders
  } else {
    const writerAhead = ahead.some((each) => each.exclusive)
    const sharedAhead = ahead.length
    const underLimit = mode.limit === null || sharedHolders.length + sharedAhead < mode.limit
    granted = writer === undefined && !writerAhead && underLimit
    blockers = writer !== undefined ? [writer] : underLimit ? [] : sharedHolders
  }

  if (granted) {
    const queue = state.queue.filter((each) => each.owner !== owner)
    const holder: Holder = { owner, exclusive: mode.exclusive, endsAt: ttl === null ? null : now + ttl }
    return { answer: { acquired: true }, next: { holders: [...state.holders, holder], queue } }
  }

  const refused: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
  // A hint for the retry delay: the soonest a holder in the way lets go.
  const ends = blockers.flatMap((each) => (each.endsAt === null ? [] : [each.endsAt - now]))
  if (ends.length > 0 && ends.length === blockers.length) refused.expiresIn = Math.min(...ends)
  if (lease === undefined) {
    // Nothing to change; dead entries are dropped by the next write.
    return { answer: refused, next: undefined }
  }
  const endsAt = now + lease
  let queue: Place[]
  if (ownIndex === -1) {
    queue = [...state.queue, { owner, exclusive: mode.exclusive, endsAt }]
  } else {
    // A live place keeps its position; only its lease (and its mode, should the caller's have changed) is renewed.
    queue = state.queue.map((each, index) => (index === ownIndex ? { owner, exclusive: mode.exclusive, endsAt } : each))
  }
  refused.position = ownIndex === -1 ? queue.length - 1 : ownIndex
  return { answer: refused, next: { holders: state.holders, queue } }
}

/** Release (`ttl` undefined) or extend: only a live holding of `owner` with the same exclusivity. */
export function decideHolding(
  stored: SharedState,
  owner: string,
  exclusive: boolean,
  ttl: number | null | undefined,
  now: number,
): Decision<boolean> {
  const state = liveState(stored, now)
  const index = state.holders.findIndex((each) => each.owner === owner && each.exclusive === exclusive)
  if (index === -1) return { answer: false, next: undefined }
  const holders =
    ttl === undefined
      ? state.holders.filter((_, i) => i !== index)
      : state.holders.map((each, i) => (i === index ? { ...each, endsAt: ttl === null ? null : now + ttl } : each))
  return { answer: true, next: { holders, queue: state.queue } }
}

/** Exclusive: ends the writer. Shared: ends every reader / permit. */
export function decideForceRelease(stored: SharedState, exclusive: boolean, now: number): Decision<void> {
  const state = liveState(stored, now)
  const holders = state.holders.filter((each) => each.exclusive !== exclusive)
  if (holders.length === state.holders.length) return { answer: undefined, next: undefined }
  return { answer: undefined, next: { holders, queue: state.queue } }
}

export function decideLeave(stored: SharedState, owner: string, now: number): Decision<void> {
  if (!stored.queue.some((each) => each.owner === owner)) return { answer: undefined, next: undefined }
  const state = liveState(stored, now)
  return { answer: undefined, next: { holders: state.holders, queue: state.queue.filter((each) => each.owner !== owner) } }
}

export function isLockedIn(stored: SharedState, mode: SharedMode, now: number): boolean {
  const { holders } = liveState(stored, now)
  if (mode.exclusive) return holders.length > 0
  if (holders.some((each) => each.exclusive)) return true
  return mode.limit !== null && holders.length >= mode.limit
}
