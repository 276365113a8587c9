// A queueing store for the suite's self-test (catches_broken_stores.test.ts), with one switch per classic
// bug of a wait queue. Not exported by the package. The leases are the memory store's (asked without
// `wait`, so its own queue stays empty); the queue and its announcements are kept here.
import { MemoryStore } from '../memory_store.js'
import type { AcquireResult, Unsubscribe, WaitOptions } from '../store.js'

export interface QueueFlaws {
  /** An acquire without `wait` takes a free lock even when others wait. */
  letsNewcomersBarge?: boolean
  /** Places whose lease ended are never dropped. */
  keepsDeadPlaces?: boolean
  /** `leaveQueue` resolves but removes nothing. */
  leaveDoesNothing?: boolean
  /** Releases are never announced. */
  announcesToNobody?: boolean
  /** Every release is announced with no name, to everyone, even when nobody waits. */
  announcesNameless?: boolean
}

interface Place {
  owner: string
  leaseEnd: number
}

/** With no flaws, a correct queueing store. */
export class FlawedQueueStore extends MemoryStore {
  readonly #queues = new Map<string, Place[]>()
  readonly #listeners = new Map<string, Set<(next?: string) => void>>()

  constructor(readonly flaws: QueueFlaws = {}) {
    super()
  }

  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const places = this.#live(key)
    const ahead = places.length > 0 && places[0]!.owner !== owner
    const barging = this.flaws.letsNewcomersBarge && wait === undefined
    if (!ahead || barging) {
      const result = await super.acquire(key, owner, ttl)
      if (result.acquired) this.#remove(key, owner)
      if (result.acquired || wait === undefined) return result
      return { ...result, position: this.#join(key, owner, wait) }
    }
    return wait === undefined ? { acquired: false } : { acquired: false, position: this.#join(key, owner, wait) }
  }

  override async release(key: string, owner: string): Promise<boolean> {
    const released = await super.release(key, owner)
    if (released) this.#announce(key)
    return released
  }

  override async forceRelease(key: string): Promise<void> {
    await super.forceRelease(key)
    this.#announce(key)
  }

  override async leaveQueue(key: string, owner: string): Promise<void> {
    if (this.flaws.leaveDoesNothing) return
    const wasHead = this.#live(key)[0]?.owner === owner
    this.#remove(key, owner)
    if (wasHead && !(await super.isLocked(key))) this.#announce(key)
  }

  override async subscribeToReleases(key: string, listener: (next?: string) => void): Promise<Unsubscribe> {
    const listeners = this.#listeners.get(key) ?? new Set()
    this.#listeners.set(key, listeners)
    listeners.add(listener)
    return () => {
      listeners.delete(listener)
    }
  }

  #announce(key: string): void {
    if (this.flaws.announcesToNobody) return
    const next = this.#live(key)[0]?.owner
    if (next === undefined && !this.flaws.announcesNameless) return
    for (const listener of [...(this.#listeners.get(key) ?? [])]) {
      if (this.flaws.announcesNameless) listener()
      else listener(next)
    }
  }

  #live(key: string): Place[] {
    const places = this.#queues.get(key) ?? []
    if (this.flaws.keepsDeadPlaces) return places
    const now = performance.now()
    const live = places.filter((place) => place.leaseEnd > now)
    if (live.length === 0) this.#queues.delete(key)
    else this.#queues.set(key, live)
    return live
  }

  #join(key: string, owner: string, wait: WaitOptions): number {
    const places = this.#live(key)
    const leaseEnd = performance.now() + wait.lease
    const index = places.findIndex((place) => place.owner === owner)
    if (index !== -1) {
      places[index]!.leaseEnd = leaseEnd
      return index
    }
    this.#queues.set(key, [...places, { owner, leaseEnd }])
    return places.length
  }

  #remove(key: string, owner: string): void {
    const places = (this.#queues.get(key) ?? []).filter((place) => place.owner !== owner)
    if (places.length === 0) this.#queues.delete(key)
    else this.#queues.set(key, places)
  }
}
