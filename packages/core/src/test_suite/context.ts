import { LockFactory } from '../lock_factory.js'
import type { LockStore } from '../store.js'
import type { ConformanceOptions } from './index.js'

/** What each test gets: two stores on the same backend (two "processes"), a factory on each, a fresh key. */
export interface TestContext {
  store: LockStore
  otherStore: LockStore
  factory: LockFactory
  otherFactory: LockFactory
  key: string
}

export interface Suite {
  test: (name: string, body: () => Promise<void>) => void
  setup: () => Promise<TestContext>
  /** Milliseconds after which a lease of `ttl` has surely ended on this store. */
  afterExpiry: (ttl: number) => number
  options: ConformanceOptions
}

export function createSuite(options: ConformanceOptions, stores: Set<LockStore>): Suite {
  const tolerance = options.expiryToleranceMs ?? 0
  let counter = 0
  const runId = Math.random().toString(36).slice(2, 10)
  const track = async (): Promise<LockStore> => {
    const store = await options.createStore()
    stores.add(store)
    return store
  }
  return {
    options,
    test: (name, body) => {
      options.runner.test(name, body)
    },
    afterExpiry: (ttl) => ttl + tolerance + 60,
    setup: async () => {
      const store = await track()
      const otherStore = await track()
      counter += 1
      return {
        store,
        otherStore,
        factory: new LockFactory(store, { retry: { delay: 10, timeout: 10_000 }, operationTimeout: 10_000 }),
        otherFactory: new LockFactory(otherStore, { retry: { delay: 10, timeout: 10_000 }, operationTimeout: 10_000 }),
        key: `verrou:conformance:${runId}:${counter}`,
      }
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A store wrapper that counts calls, to prove invalid input never reaches the store. */
export function countingStore(store: LockStore): { store: LockStore; calls: () => number } {
  let calls = 0
  const counted: LockStore = {
    acquire: (...args) => {
      calls++
      return store.acquire(...args)
    },
    release: (...args) => {
      calls++
      return store.release(...args)
    },
    extend: (...args) => {
      calls++
      return store.extend(...args)
    },
    forceRelease: (...args) => {
      calls++
      return store.forceRelease(...args)
    },
    isLocked: (...args) => {
      calls++
      return store.isLocked(...args)
    },
  }
  return { store: counted, calls: () => calls }
}
