import assert from 'node:assert/strict'
import { LockFactory } from '../lock_factory.js'
import type { LockStore, SharedLockStore } from '../store.js'
import type { Suite } from './context.js'

/** Lease of holders that must outlive the test (they are released or force-released by it). */
export const LONG_TTL = '10s'
/** Lease of holders whose expiry a test waits out: short, but hundreds of ms above timer noise. */
export const SHORT_TTL_MS = 400
/**
 * How much sooner than its ttl a lease may seem to end, measured here: a backend that keeps whole
 * milliseconds may date a grant up to 1 ms before this process's clock saw the request leave.
 */
export const CLOCK_SLACK_MS = 5

/** A factory on `store` with the retry settings of the suite's own factories. */
export function factoryOn(store: LockStore): LockFactory {
  return new LockFactory(store, { retry: { delay: 10, timeout: 10_000 }, operationTimeout: 10_000 })
}

/** A factory on one more store from `createStore`: one more "process". */
export async function otherProcess(suite: Suite): Promise<LockFactory> {
  return factoryOn(await suite.createStore())
}

/**
 * The store, with a promise that settles once a shared acquire that asked to wait came back: refused, the
 * caller has its place in the queue from then on. (Granted or failed, it settles too, so that a store that
 * wrongly grants fails the test's assertions instead of hanging it.) Every other member is the store's own.
 */
export function watchSharedPlace(store: LockStore): { store: LockStore; placed: Promise<void> } {
  const shared = store.shared
  assert.ok(shared, 'capabilities.sharedLocks is true')
  let placed: () => void = () => {}
  const promise = new Promise<void>((resolve) => {
    placed = resolve
  })
  const watched: SharedLockStore = {
    acquire: async (key, owner, mode, ttl, wait) => {
      if (wait === undefined) return shared.acquire(key, owner, mode, ttl)
      try {
        return await shared.acquire(key, owner, mode, ttl, wait)
      } finally {
        placed()
      }
    },
    release: (key, owner, mode) => shared.release(key, owner, mode),
    extend: (key, owner, mode, ttl) => shared.extend(key, owner, mode, ttl),
    forceRelease: (key, mode) => shared.forceRelease(key, mode),
    isLocked: (key, mode) => shared.isLocked(key, mode),
    leaveQueue: (key, owner) => shared.leaveQueue(key, owner),
  }
  const subscribe = shared.subscribeToReleases
  if (subscribe !== undefined) watched.subscribeToReleases = (key, listener) => subscribe.call(shared, key, listener)
  const proxy = new Proxy(store, {
    get(target, property) {
      if (property === 'shared') return watched
      const value: unknown = Reflect.get(target, property)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store: proxy, placed: promise }
}

/** A factory on a new store whose first queued attempt settles `placed`. */
export async function watchedProcess(suite: Suite): Promise<{ factory: LockFactory; placed: Promise<void> }> {
  const { store, placed } = watchSharedPlace(await suite.createStore())
  return { factory: factoryOn(store), placed }
}

/** Asserts the tokens strictly increase, naming the first pair that does not. */
export function assertIncreasing(tokens: readonly (number | undefined)[], what: string): void {
  for (let i = 1; i < tokens.length; i++) {
    const [before, after] = [tokens[i - 1], tokens[i]]
    assert.ok(
      before !== undefined && after !== undefined && after > before,
      `${what}: token ${i + 1} (${after}) is not above token ${i} (${before}); all: ${tokens.join(', ')}`,
    )
  }
}
