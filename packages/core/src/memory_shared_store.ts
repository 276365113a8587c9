import { ReleaseListeners } from './release_listeners.js'
import type { AcquireResult, SharedLockStore, SharedMode, Unsubscribe, WaitOptions } from './store.js'
import { type CancelTimer, startTimer } from './timer.js'

/** One holding of a shared key. Times are on the monotonic clock. */
interface Holder {
  exclusive: boolean
  /** `null` never expires. */
  leaseEnd: number | null
  /** The lease it was given: what a rival is told is left never exceeds it (sums near 2^53 round). */
  ttl: number | null
}

/** One waiter's place: the mode it asks for (its limit included) and its place lease. */
interface Place {
  owner: string
  exclusive: boolean
  limit: number | null
  leaseEnd: number
}

interface KeyState {
  holders: Map<string, Holder>
  places: Place[]
  /** Fires at the earliest lease end (holder or place), to free it and announce the waiters it held up. */
  cancelTimer: CancelTimer | undefined
}

/**
 * The semaphores and read-write locks of `MemoryStore` (its `shared`), under the `SharedLockStore` rules.
 * Every operation is synchronous under the hood, so none interleaves with another. Leases run on the
 * monotonic clock; one timer per key follows the earliest lease end, so a holder or a place that ends frees
 * its slot (and announces the waiters now admitted) without anyone calling, and a key with no holder and no
 * live place is dropped: the footprint is bounded by the keys in use. Tokens come from the store's one
 * counter, so they rise across mutexes and shared keys alike and nothing needs keeping per idle key.
 */
export class MemorySharedStore implements SharedLockStore {
  readonly #keys = new Map<string, KeyState>()
  readonly #listeners = new ReleaseListeners()
  readonly #nextToken: () => number

  constructor(nextToken: () => number) {
    this.#nextToken = nextToken
  }

  async acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const now = performance.now()
    const state = this.#state(key)
    const ended = prune(state, now)
    const index = state.places.findIndex((place) => place.owner === owner)
    if (!state.holders.has(owner) && admits(state, index, mode)) {
      if (index !== -1) state.places.splice(index, 1)
      state.holders.set(owner, { exclusive: mode.exclusive, leaseEnd: ttl === null ? null : now + ttl, ttl })
      this.#settle(key, state, now, ended)
      return { acquired: true, fencingToken: this.#nextToken() }
    }
    const refused: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
    const expiresIn = soonestEnd(state, now)
    if (expiresIn !== undefined) refused.expiresIn = expiresIn
    if (wait !== undefined) {
      const leaseEnd = now + wait.lease
      if (index === -1) {
        refused.position = state.places.push({ owner, exclusive: mode.exclusive, limit: mode.limit, leaseEnd }) - 1
      } else {
        // A place keeps the mode of the request that renews it: the caller may have changed its limit.
        Object.assign(state.places[index]!, { exclusive: mode.exclusive, limit: mode.limit, leaseEnd })
        refused.position = index
      }
    }
    this.#settle(key, state, now, ended)
    return refused
  }

  async release(key: string, owner: string, mode: SharedMode): Promise<boolean> {
    return this.#end(key, owner, mode)
  }

  async extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean> {
    const now = performance.now()
    const state = this.#keys.get(key)
    if (state === undefined) return false
    const ended = prune(state, now)
    const holder = state.holders.get(owner)
    const owned = holder !== undefined && holder.exclusive === mode.exclusive
    if (owned) {
      holder.leaseEnd = ttl === null ? null : now + ttl
      holder.ttl = ttl
    }
    this.#settle(key, state, now, ended)
    return owned
  }

  async forceRelease(key: string, mode: SharedMode): Promise<void> {
    const now = performance.now()
    const state = this.#keys.get(key)
    if (state === undefined) return
    let ended = prune(state, now)
    for (const [owner, holder] of state.holders) {
      if (holder.exclusive !== mode.exclusive) continue
      state.holders.delete(owner)
      ended = true
    }
    this.#settle(key, state, now, ended)
  }

  async isLocked(key: string, mode: SharedMode): Promise<boolean> {
    const now = performance.now()
    const state = this.#keys.get(key)
    if (state === undefined) return false
    this.#settle(key, state, now, prune(state, now))
    if (mode.exclusive) return state.holders.size > 0
    const { exclusive, shared } = countHolders(state)
    return exclusive || (mode.limit !== null && shared >= mode.limit)
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    const now = performance.now()
    const state = this.#keys.get(key)
    if (state === undefined) return
    let ended = prune(state, now)
    const index = state.places.findIndex((place) => place.owner === owner)
    if (index !== -1) {
      state.places.splice(index, 1)
      ended = true
    }
    this.#settle(key, state, now, ended)
  }

  async subscribeToReleases(key: string, listener: (next?: string) => void): Promise<Unsubscribe> {
    return this.#listeners.add(key, listener)
  }

  /** Number of shared keys the store keeps anything for (holders, places, subscriptions). */
  get footprint(): number {
    return new Set([...this.#keys.keys(), ...this.#listeners.keys()]).size
  }

  #state(key: string): KeyState {
    let state = this.#keys.get(key)
    if (state === undefined) {
      state = { holders: new Map(), places: [], cancelTimer: undefined }
      this.#keys.set(key, state)
    }
    return state
  }

  /** release: ends `owner`'s unexpired holding if its exclusivity matches `mode`. */
  #end(key: string, owner: string, mode: SharedMode): boolean {
    const now = performance.now()
    const state = this.#keys.get(key)
    if (state === undefined) return false
    const ended = prune(state, now)
    const holder = state.holders.get(owner)
    const owned = holder !== undefined && holder.exclusive === mode.exclusive
    if (owned) state.holders.delete(owner)
    this.#settle(key, state, now, ended || owned)
    return owned
  }

  /**
   * After every operation: drops a key with nothing left, else points its timer at the earliest lease end;
   * then, if holders or places ended (`ended`), announces the waiters now admitted.
   */
  #settle(key: string, state: KeyState, now: number, ended: boolean): void {
    state.cancelTimer?.()
    state.cancelTimer = undefined
    if (state.holders.size === 0 && state.places.length === 0) {
      if (this.#keys.get(key) === state) this.#keys.delete(key)
      return
    }
    let earliest = Number.POSITIVE_INFINITY
    for (const holder of state.holders.values()) {
      if (holder.leaseEnd !== null && holder.leaseEnd < earliest) earliest = holder.leaseEnd
    }
    for (const place of state.places) if (place.leaseEnd < earliest) earliest = place.leaseEnd
    if (earliest !== Number.POSITIVE_INFINITY) {
      // Never keeps the process alive; startTimer chains past setTimeout's cap.
      state.cancelTimer = startTimer(
        Math.max(0, earliest - now),
        () => {
          if (this.#keys.get(key) !== state) return
          const at = performance.now()
          // A timer firing a fraction early prunes nothing and is simply armed again.
          this.#settle(key, state, at, prune(state, at))
        },
        { unref: true },
      )
    }
    if (ended) this.#announce(key, state)
  }

  /**
   * Names, in queue order, every waiter the grant rule now admits (counting those named before it as
   * holders), stopping at the first it would not. Nothing when nobody waits or nobody listens.
   */
  #announce(key: string, state: KeyState): void {
    if (!this.#listeners.has(key) || state.places.length === 0) return
    let { exclusive, shared } = countHolders(state)
    const named: string[] = []
    for (const place of state.places) {
      const admitted = place.exclusive ? !exclusive && shared === 0 : !exclusive && (place.limit === null || shared < place.limit)
      if (!admitted) break
      named.push(place.owner)
      if (place.exclusive) exclusive = true
      else shared += 1
    }
    for (const owner of named) this.#listeners.announce(key, owner)
  }
}

/** Drops expired holders and dead places; returns whether anything was dropped. */
function prune(state: KeyState, now: number): boolean {
  let ended = false
  for (const [owner, holder] of state.holders) {
    if (holder.leaseEnd !== null && holder.leaseEnd <= now) {
      state.holders.delete(owner)
      ended = true
    }
  }
  const live = state.places.filter((place) => place.leaseEnd > now)
  if (live.length !== state.places.length) {
    state.places = live
    ended = true
  }
  return ended
}

function countHolders(state: KeyState): { exclusive: boolean; shared: number } {
  let exclusive = false
  let shared = 0
  for (const holder of state.holders.values()) {
    if (holder.exclusive) exclusive = true
    else shared += 1
  }
  return { exclusive, shared }
}

/**
 * The grant rule (see `SharedLockStore`) for a request in `mode` whose place is at `index` (-1: none), the
 * owner not holding already: "ahead" is every live place before its own, or all of them.
 */
function admits(state: KeyState, index: number, mode: SharedMode): boolean {
  const ahead = index === -1 ? state.places.length : index
  if (mode.exclusive) return state.holders.size === 0 && ahead === 0
  const { exclusive, shared } = countHolders(state)
  if (exclusive) return false
  for (let i = 0; i < ahead; i++) if (state.places[i]!.exclusive) return false
  return mode.limit === null || shared + ahead < mode.limit
}

/** ms until the first holder's lease ends, capped by its lease; `undefined` when none will. */
function soonestEnd(state: KeyState, now: number): number | undefined {
  let soonest: number | undefined
  for (const holder of state.holders.values()) {
    if (holder.leaseEnd === null || holder.ttl === null) continue
    const left = Math.min(holder.leaseEnd - now, holder.ttl)
    if (soonest === undefined || left < soonest) soonest = left
  }
  return soonest
}
