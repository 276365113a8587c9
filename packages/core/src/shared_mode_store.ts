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
 * One per factory and mode: the in-process release queue is keyed by store object, so each mode gets one
 * subscription per key however many Locks wait.
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
      (shared.subscribeToReleases as NonNullable<SharedLockStore['subscribeToReleases']>).call(shared, key, listener)
  }
  return store
}
