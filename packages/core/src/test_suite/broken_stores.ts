// Deliberately broken drivers for the suite's self-test (catches_broken_stores.test.ts). Not exported by
// the package: each one has a single bug a real driver could plausibly ship, and the suite must catch it.
import { createHash } from 'node:crypto'
import { MemoryStore } from '../memory_store.js'
import type { AcquireResult, LockStore, SharedLockStore, SharedMode, Unsubscribe, WaitOptions } from '../store.js'
import { UnheardAnnouncements } from '../unheard_announcements.js'

export class ReleasesForAnyOwner extends MemoryStore {
  override async release(key: string): Promise<boolean> {
    const held = await this.isLocked(key)
    await this.forceRelease(key)
    return held
  }
}

export class IgnoresTtl extends MemoryStore {
  override acquire(key: string, owner: string, _ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    return super.acquire(key, owner, null, wait)
  }
}

export class RestartsTokens extends MemoryStore {
  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl, wait)
    return result.acquired ? { acquired: true, fencingToken: 1 } : result
  }
}

export class RevivesExpiredLeases extends MemoryStore {
  readonly #owners = new Map<string, string>()
  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl, wait)
    if (result.acquired) this.#owners.set(key, owner)
    return result
  }
  override async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    if (await super.extend(key, owner, ttl)) return true
    if (this.#owners.get(key) !== owner) return false
    // The bug: re-creating a lease the owner no longer has.
    await super.acquire(key, owner, ttl)
    return true
  }
}

/** Reports an unreachable backend as "not acquired" / "not owned". */
export const swallowsErrors: LockStore = {
  acquire: async () => ({ acquired: false }),
  release: async () => false,
  extend: async () => false,
  forceRelease: async () => {},
  isLocked: async () => false,
}

/** Stores each lock under `storedKey(key)`, the way a driver with a fixed-width key column might. */
class RewritesKeys extends MemoryStore {
  constructor(readonly storedKey: (key: string) => string) {
    super()
  }
  override acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    return super.acquire(this.storedKey(key), owner, ttl, wait)
  }
  override leaveQueue(key: string, owner: string): Promise<void> {
    return super.leaveQueue(this.storedKey(key), owner)
  }
  override release(key: string, owner: string): Promise<boolean> {
    return super.release(this.storedKey(key), owner)
  }
  override extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    return super.extend(this.storedKey(key), owner, ttl)
  }
  override forceRelease(key: string): Promise<void> {
    return super.forceRelease(this.storedKey(key))
  }
  override isLocked(key: string): Promise<boolean> {
    return super.isLocked(this.storedKey(key))
  }
  override subscribeToReleases(key: string, listener: (next?: string) => void): Promise<Unsubscribe> {
    return super.subscribeToReleases(this.storedKey(key), listener)
  }
}

/** A VARCHAR(255)-style column that silently cuts what does not fit. */
export const truncatesLongKeys = () => new RewritesKeys((key) => key.slice(0, 255))

/** Hashes long keys to fit the column, but only hashes the part of the key that would have fitted. */
export const hashesLongKeysLossily = () =>
  new RewritesKeys((key) => (key.length <= 128 ? key : createHash('sha256').update(key.slice(0, 512)).digest('hex')))

/**
 * Keeps a fencing counter per key and deletes it once the key has been free for `forgetAfterMs`, so the
 * next holder gets token 1 again: the "clean up idle keys" change that breaks fencing.
 */
export class ForgetsIdleCounters extends MemoryStore {
  readonly #counters = new Map<string, { last: number; busyUntil: number }>()
  constructor(readonly forgetAfterMs = 2_000) {
    super()
  }
  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl, wait)
    if (!result.acquired) return result
    const now = performance.now()
    const counter = this.#counters.get(key)
    const last = counter === undefined || now - counter.busyUntil > this.forgetAfterMs ? 0 : counter.last
    this.#counters.set(key, { last: last + 1, busyUntil: ttl === null ? Number.POSITIVE_INFINITY : now + ttl })
    return { acquired: true, fencingToken: last + 1 }
  }
  override async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    const extended = await super.extend(key, owner, ttl)
    const counter = this.#counters.get(key)
    if (extended && counter) counter.busyUntil = ttl === null ? Number.POSITIVE_INFINITY : performance.now() + ttl
    return extended
  }
  override async release(key: string, owner: string): Promise<boolean> {
    const released = await super.release(key, owner)
    this.#markFree(key)
    return released
  }
  override async forceRelease(key: string): Promise<void> {
    await super.forceRelease(key)
    this.#markFree(key)
  }
  #markFree(key: string): void {
    const counter = this.#counters.get(key)
    if (counter) counter.busyUntil = Math.min(counter.busyUntil, performance.now())
  }
}

/** One way each to get release announcements wrong. */
export interface AnnouncementFlaws {
  silentOnForceRelease?: boolean
  unsubscribeDoesNothing?: boolean
  wakesEveryKey?: boolean
  /** Resolves subscribeToReleases at once but starts listening this many milliseconds later. */
  activeAfterMs?: number
  /** Reports `heardSince` (the store's creation) but never replays what a key missed before it subscribed. */
  claimsHeardSince?: boolean
  /** Not a flaw: keeps what no listener heard, replays it to the key's next listener, and says so. */
  replaysUnheard?: boolean
}

/**
 * Announces every release, nameless, with its own registry, flawed as told; with no flaws it is a correct
 * store without a wait queue (declare `waitQueue: false`).
 */
export class AnnouncingStore extends MemoryStore {
  readonly #listeners = new Map<string, Set<() => void>>()
  readonly #unheard = new UnheardAnnouncements()
  readonly #createdAt = performance.now()
  constructor(readonly flaws: AnnouncementFlaws = {}) {
    super()
    // Not a queueing store: the memory store's queue is never used, and leaveQueue is hidden.
    Object.defineProperty(this, 'leaveQueue', { value: undefined })
  }
  override acquire(key: string, owner: string, ttl: number | null): Promise<AcquireResult> {
    return super.acquire(key, owner, ttl)
  }
  override async release(key: string, owner: string): Promise<boolean> {
    const released = await super.release(key, owner)
    if (released) this.#announce(key)
    return released
  }
  override async forceRelease(key: string): Promise<void> {
    await super.forceRelease(key)
    if (!this.flaws.silentOnForceRelease) this.#announce(key)
  }
  override async subscribeToReleases(key: string, listener: () => void): Promise<Unsubscribe> {
    const member = () => listener()
    let unsubscribed = false
    const start = () => {
      if (unsubscribed) return
      const listeners = this.#listeners.get(key) ?? new Set()
      this.#listeners.set(key, listeners)
      listeners.add(member)
    }
    if (this.flaws.activeAfterMs === undefined) start()
    else setTimeout(start, this.flaws.activeAfterMs)
    if (this.flaws.replaysUnheard) for (const _ of this.#unheard.take(key)) member()
    const unsubscribe = () => {
      if (this.flaws.unsubscribeDoesNothing) return
      unsubscribed = true
      this.#listeners.get(key)?.delete(member)
    }
    const reportsHeardSince = this.flaws.replaysUnheard || this.flaws.claimsHeardSince
    return reportsHeardSince ? Object.assign(unsubscribe, { heardSince: this.#createdAt }) : unsubscribe
  }
  #announce(key: string): void {
    if (this.flaws.replaysUnheard && !this.#listeners.get(key)?.size) this.#unheard.keep(key, undefined)
    const groups = this.flaws.wakesEveryKey ? [...this.#listeners.values()] : [this.#listeners.get(key) ?? new Set()]
    for (const listeners of groups) for (const listener of [...listeners]) listener()
  }
}

/** Reports a refused acquire's `expiresIn` multiplied by `factor`: 0.001 for seconds, 1000 for µs. */
export class ExpiresInWrongUnit extends MemoryStore {
  constructor(readonly factor: number) {
    super()
  }
  override async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const result = await super.acquire(key, owner, ttl, wait)
    if (result.acquired || result.expiresIn === undefined) return result
    return { acquired: false, expiresIn: result.expiresIn * this.factor }
  }
}

/** Closes its resources, then throws when closed again (as many clients do on a second `end()`). */
export class BreaksOnSecondClose extends MemoryStore {
  #closed = false
  async close(): Promise<void> {
    if (this.#closed) throw new Error('Connection is already closed')
    this.#closed = true
  }
}

/** One way each to get semaphores and read-write locks wrong. */
export interface SharedFlaws {
  /** A permit is granted as a reader: its limit is never applied. */
  ignoresLimit?: boolean
  /** Shared holdings never expire. */
  sharedLeasesNeverEnd?: boolean
  /** A writer never keeps a place: readers that come after a waiting writer go ahead of it. */
  writersNeverQueue?: boolean
  /** forceRelease on one side frees both the writer and the readers. */
  forceReleasesBothSides?: boolean
  /** release ends the owner's holding whichever side asks. */
  releaseIgnoresSide?: boolean
  /** Every shared grant gets token 1. */
  restartsSharedTokens?: boolean
}

/** The memory store with its `shared` flawed as told; with no flaws, a correct store. */
export class FlawedSharedStore extends MemoryStore {
  readonly #flawed: SharedLockStore

  constructor(readonly sharedFlaws: SharedFlaws) {
    super()
    const inner = super.shared as SharedLockStore
    const flaws = sharedFlaws
    const other = (mode: SharedMode): SharedMode => ({ exclusive: !mode.exclusive, limit: null })
    this.#flawed = {
      acquire: async (key, owner, mode, ttl, wait) => {
        const asked = flaws.ignoresLimit && !mode.exclusive ? { exclusive: false, limit: null } : mode
        const lease = flaws.sharedLeasesNeverEnd && !mode.exclusive ? null : ttl
        const place = flaws.writersNeverQueue && mode.exclusive ? undefined : wait
        const result = await (place === undefined
          ? inner.acquire(key, owner, asked, lease)
          : inner.acquire(key, owner, asked, lease, place))
        return flaws.restartsSharedTokens && result.acquired ? { acquired: true, fencingToken: 1 } : result
      },
      release: async (key, owner, mode) =>
        (await inner.release(key, owner, mode)) || (flaws.releaseIgnoresSide === true && inner.release(key, owner, other(mode))),
      extend: (key, owner, mode, ttl) => inner.extend(key, owner, mode, ttl),
      forceRelease: async (key, mode) => {
        await inner.forceRelease(key, mode)
        if (flaws.forceReleasesBothSides) await inner.forceRelease(key, other(mode))
      },
      isLocked: (key, mode) => inner.isLocked(key, mode),
      leaveQueue: (key, owner) => inner.leaveQueue(key, owner),
      subscribeToReleases: (key, listener) => inner.subscribeToReleases!(key, listener),
    }
  }

  override get shared(): SharedLockStore {
    return this.#flawed
  }
}

/**
 * A correct store that cannot announce anything (no `subscribeToReleases`, on mutexes or shared keys), as a
 * backend without push: its waiters poll. The memory store underneath, every other member its own.
 */
export function pollingStore(): LockStore {
  const inner = new MemoryStore()
  const shared = inner.shared as SharedLockStore
  return {
    acquire: (...args) => inner.acquire(...args),
    release: (...args) => inner.release(...args),
    extend: (...args) => inner.extend(...args),
    forceRelease: (...args) => inner.forceRelease(...args),
    isLocked: (...args) => inner.isLocked(...args),
    leaveQueue: (...args) => inner.leaveQueue(...args),
    shared: {
      acquire: (...args) => shared.acquire(...args),
      release: (...args) => shared.release(...args),
      extend: (...args) => shared.extend(...args),
      forceRelease: (...args) => shared.forceRelease(...args),
      isLocked: (...args) => shared.isLocked(...args),
      leaveQueue: (...args) => shared.leaveQueue(...args),
    },
  }
}
