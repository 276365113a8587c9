import type { AcquireResult, LockStore, SharedLockStore, SharedMode, Unsubscribe, WaitOptions } from './store.js'

/**
 * What a Lock is: a mutex (`createLock`), a semaphore permit, or one side of a read-write lock. It decides
 * which store calls the Lock makes and what `serialize()` / `restoreLock` carry.
 */
export type LockKind = 'lock' | 'permit' | 'read' | 'write'

/** The shared mode a Lock of `kind` asks for (`limit`: the permit's limit, `null` for the others). */
export function sharedModeOf(kind: Exclude<LockKind, 'lock'>, limit: number | null): SharedMode {
  return Object.freeze({ exclusive: kind === 'write', limit: kind === 'permit' ? limit : null })
}

/**
 * A `SharedLockStore` seen through one fixed `SharedMode`, as a `LockStore`. `Lock` then works unchanged on
 * permits, readers and writers (retry, waiting, release notifications, keep-alive, run, serialize): every
 * call simply carries the mode. Always a queueing store (`leaveQueue`), since the shared contract has the
 * queue; it announces releases only if the shared store can.
 *
 * One per factory and mode: the in-process release queue is keyed by store object, so its waiters of one
 * key share one queue; the adapters of every mode share the backend subscription (see `subscribeShared`).
 */
export function sharedModeStore(shared: SharedLockStore, mode: SharedMode): LockStore {
  const store: LockStore = {
    acquire: (key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> =>
      wait === undefined ? shared.acquire(key, owner, mode, ttl) : shared.acquire(key, owner, mode, ttl, wait),
    release: (key: string, owner: string) => shared.release(key, owner, mode),
    extend: (key: string, owner: string, ttl: number | null) => shared.extend(key, owner, mode, ttl),
    forceRelease: (key: string) => shared.forceRelease(key, mode),
    isLocked: (key: string) => shared.isLocked(key, mode),
    leaveQueue: (key: string, owner: string) => shared.leaveQueue(key, owner),
  }
  if (typeof shared.subscribeToReleases === 'function') {
    // Present only when the shared store has it: waiters then wait for announcements instead of polling.
    store.subscribeToReleases = (key: string, listener: (next?: string) => void): Promise<Unsubscribe> =>
      subscribeShared(shared, key, listener)
  }
  return store
}

/** One backend subscription to a shared key, heard by every adapter of this process that waits on it. */
interface Fanout {
  readonly listeners: Set<(next?: string) => void>
  readonly subscribed: Promise<Unsubscribe>
}

const fanouts = new WeakMap<SharedLockStore, Map<string, Fanout>>()

/**
 * `shared.subscribeToReleases`, shared by the adapters of every mode: readers, writers and permits of any
 * limit waiting on one key in this process make one subscription, not one per mode (the announcement names
 * the owner, so each waiter still hears only its own turn). It ends when the last listener leaves; a
 * subscription that failed is forgotten, so the next waiter tries again.
 */
function subscribeShared(shared: SharedLockStore, key: string, listener: (next?: string) => void): Promise<Unsubscribe> {
  let byKey = fanouts.get(shared)
  if (byKey === undefined) {
    byKey = new Map()
    fanouts.set(shared, byKey)
  }
  const keys = byKey
  let fanout = keys.get(key)
  if (fanout === undefined) {
    const listeners = new Set<(next?: string) => void>()
    const hear = (next?: string) => {
      for (const each of [...listeners]) each(next)
    }
    let subscribed: Promise<Unsubscribe>
    try {
      subscribed = Promise.resolve(
        (shared.subscribeToReleases as NonNullable<SharedLockStore['subscribeToReleases']>).call(shared, key, hear),
      )
    } catch (error) {
      subscribed = Promise.reject(error)
    }
    const created: Fanout = { listeners, subscribed }
    subscribed.catch(() => {
      if (keys.get(key) === created) keys.delete(key)
    })
    keys.set(key, created)
    fanout = created
  }
  const joined = fanout
  joined.listeners.add(listener)
  return joined.subscribed.then(
    (unsubscribe) => {
      let ended = false
      return async () => {
        if (ended) return
        ended = true
        joined.listeners.delete(listener)
        if (joined.listeners.size > 0) return
        if (keys.get(key) === joined) keys.delete(key)
        await unsubscribe()
      }
    },
    (error: unknown) => {
      joined.listeners.delete(listener)
      throw error
    },
  )
}
