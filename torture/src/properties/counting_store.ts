import { type LockStore, MemoryStore } from '@verrou/core'

/** A memory store that counts the calls reaching it: validation must reject bad input before any does. */
export function countingStore(): { store: LockStore; calls: () => number } {
  const inner = new MemoryStore()
  let calls = 0
  const count =
    <A extends unknown[], R>(method: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      calls++
      return method(...args)
    }
  const store: LockStore = {
    acquire: count(inner.acquire.bind(inner)),
    release: count(inner.release.bind(inner)),
    extend: count(inner.extend.bind(inner)),
    forceRelease: count(inner.forceRelease.bind(inner)),
    isLocked: count(inner.isLocked.bind(inner)),
  }
  return { store, calls: () => calls }
}
