import { type Expiring, ExpiryLists } from './expiry_lists.js'
import { MemorySharedStore } from './memory_shared_store.js'
import { ReleaseListeners } from './release_listeners.js'
import type { AcquireResult, LockStore, SharedLockStore, Unsubscribe, WaitOptions } from './store.js'
import { WaitQueues } from './wait_queue.js'

interface Lease extends Expiring {
  readonly key: string
  owner: string
  /** On the monotonic clock; `null` never expires. */
  expiresAt: number | null
  /**
   * The lease it was given, in ms. Near 2^53 a sum with the clock rounds, so what is left is capped by it: a
   * rival is never told more than the lease.
   */
  ttl: number | null
}

/**
 * Locks inside one process. Every operation is synchronous under the hood, so no two callers can
 * interleave inside one; the lease clock is monotonic, so wall-clock changes do not move expiries.
 * A queueing store: waiters that pass `wait` queue per key in FIFO order, nobody jumps a non-empty queue,
 * and each release (or lease end, or the head's place dying) is announced with the name of the next waiter.
 * Semaphores and read-write locks live in `shared`, apart from these mutex keys.
 */
export class MemoryStore implements LockStore {
  readonly #leases = new Map<string, Lease>()
  /** Frees a lease that expired untouched, so memory does not grow with every key ever used. */
  readonly #expiries = new ExpiryLists<Lease>((lease) => {
    if (this.#leases.get(lease.key) === lease) this.#live(lease.key, performance.now())
  })
  readonly #listeners = new ReleaseListeners()
  readonly #queues = new WaitQueues((key) => {
    if (this.#live(key, performance.now()) === undefined) this.#announce(key)
  })
  /**
   * One counter for all keys: strictly increasing per key too, and nothing kept per key once its lease ends,
   * so the store's footprint is bounded by the keys in use.
   */
  #lastToken = 0
  readonly #shared = new MemorySharedStore(() => {
    this.#lastToken += 1
    return this.#lastToken
  })

  /** Semaphores and read-write locks (see `SharedLockStore`); tokens come from the same counter as mutexes. */
  get shared(): SharedLockStore {
    return this.#shared
  }

  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const now = performance.now()
    const current = this.#live(key, now)
    const head = this.#queues.head(key, now)
    if (current || (head !== undefined && head !== owner)) {
      const refused: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
      if (current && current.expiresAt !== null && current.ttl !== null) {
        refused.expiresIn = Math.min(current.expiresAt - now, current.ttl)
      }
      if (wait !== undefined) refused.position = this.#queues.join(key, owner, wait.lease, now)
      return refused
    }
    if (head !== undefined) this.#queues.remove(key, owner, now)
    const lease: Lease = {
      key,
      owner,
      expiresAt: ttl === null ? null : now + ttl,
      ttl,
      expiryPrevious: undefined,
      expiryNext: undefined,
      expiryList: undefined,
    }
    this.#leases.set(key, lease)
    this.#scheduleExpiry(lease, ttl)
    this.#lastToken += 1
    return { acquired: true, fencingToken: this.#lastToken }
  }

  async release(key: string, owner: string): Promise<boolean> {
    const current = this.#live(key, performance.now())
    if (!current || current.owner !== owner) return false
    this.#end(key, current)
    return true
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    const now = performance.now()
    const current = this.#live(key, now)
    if (!current || current.owner !== owner) return false
    current.expiresAt = ttl === null ? null : now + ttl
    current.ttl = ttl
    this.#scheduleExpiry(current, ttl)
    return true
  }

  async forceRelease(key: string): Promise<void> {
    const current = this.#leases.get(key)
    if (current) this.#end(key, current)
  }

  async isLocked(key: string): Promise<boolean> {
    return this.#live(key, performance.now()) !== undefined
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    const now = performance.now()
    if (this.#queues.remove(key, owner, now) && this.#live(key, now) === undefined) this.#announce(key)
  }

  async subscribeToReleases(key: string, listener: (next?: string) => void): Promise<Unsubscribe> {
    return this.#listeners.add(key, listener)
  }

  /** Number of keys currently held: lets tests check that expired leases are reclaimed. */
  get size(): number {
    return this.#leases.size
  }

  /**
   * Number of keys the store keeps anything for (a lease, a queue of waiters, a subscription; mutex and shared
   * keys each counted): bounded by the keys in use.
   */
  get footprint(): number {
    const keys = new Set([...this.#leases.keys(), ...this.#listeners.keys(), ...this.#queues.keys()])
    return keys.size + this.#shared.footprint
  }

  /** The unexpired lease on `key`, dropping an expired one on the way. */
  #live(key: string, now: number): Lease | undefined {
    const lease = this.#leases.get(key)
    if (lease === undefined) return undefined
    if (lease.expiresAt !== null && lease.expiresAt <= now) {
      this.#end(key, lease)
      return undefined
    }
    return lease
  }

  #end(key: string, lease: Lease): void {
    this.#expiries.remove(lease)
    if (this.#leases.get(key) === lease) this.#leases.delete(key)
    this.#announce(key)
  }

  /** Tells the key's subscribers who should try now; says nothing when nobody waits. */
  #announce(key: string): void {
    const next = this.#queues.head(key, performance.now())
    if (next !== undefined) this.#listeners.announce(key, next)
  }

  /** Puts the lease in line to be freed once `ttl` has passed (its `expiresAt` is now + `ttl`). */
  #scheduleExpiry(lease: Lease, ttl: number | null): void {
    this.#expiries.remove(lease)
    if (ttl !== null && lease.expiresAt !== null) this.#expiries.add(lease, ttl)
  }
}

/** No options yet; the parameter exists so calls written today keep working when some are added. */
export type MemoryStoreOptions = Record<string, never>

/** A store that keeps locks in this process: for tests, single-process apps, and as a reference driver. */
export function memoryStore(_options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore()
}
