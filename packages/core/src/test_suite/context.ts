import { LockFactory } from '../lock_factory.js'
import type { LockStore } from '../store.js'
import { assertCapabilitiesMatch, type StoreCapabilities } from './capabilities.js'
import type { ConformanceOptions } from './index.js'

/** What each test gets: two stores on the same backend (two "processes"), a factory on each, a fresh key. */
export interface TestContext {
  store: LockStore
  otherStore: LockStore
  factory: LockFactory
  otherFactory: LockFactory
  key: string
}

export interface TestOptions {
  /** Overrides the suite's per-test timeout for a test that needs longer. */
  timeoutMs?: number
}

export interface Suite {
  test: (name: string, body: () => Promise<void>, options?: TestOptions) => void
  setup: () => Promise<TestContext>
  /** One more store from `createStore`, checked against the declared capabilities and closed after the suite. */
  createStore: () => Promise<LockStore>
  /** Milliseconds after which a lease of `ttl` has surely ended on this store. */
  afterExpiry: (ttl: number) => number
  capabilities: StoreCapabilities
  options: ConformanceOptions
}

/** Each test's own bound when the driver sets none: generous, the slowest test needs about 5 s. */
export const DEFAULT_TEST_TIMEOUT_MS = 30_000
/** Extra time given to the runner's own timeout, so the suite's message (naming the test) comes first. */
const RUNNER_GRACE_MS = 5_000

export function createSuite(options: ConformanceOptions, capabilities: StoreCapabilities, stores: Set<LockStore>): Suite {
  const tolerance = options.expiryToleranceMs ?? 0
  const defaultTimeout = options.testTimeoutMs ?? DEFAULT_TEST_TIMEOUT_MS
  let counter = 0
  const runId = Math.random().toString(36).slice(2, 10)
  const closeStore = options.closeStore ?? ((store: LockStore) => store.close?.())
  const createStore = async (): Promise<LockStore> => {
    const store = await options.createStore()
    stores.add(store)
    assertCapabilitiesMatch(store, capabilities)
    return store
  }
  return {
    options,
    capabilities,
    createStore,
    test: (name, body, testOptions = {}) => {
      const timeoutMs = testOptions.timeoutMs ?? defaultTimeout
      options.runner.test(
        name,
        async () => {
          const before = new Set(stores)
          try {
            await withTimeout(body(), timeoutMs, name)
          } finally {
            // The stores a test opened are closed when it ends, not when the suite does: a driver that
            // opens a connection per store (as a process would) must not run the server out of them.
            for (const store of [...stores].filter((each) => !before.has(each))) {
              stores.delete(store)
              await closeStore(store)
            }
          }
        },
        timeoutMs + RUNNER_GRACE_MS,
      )
    },
    afterExpiry: (ttl) => ttl + tolerance + 60,
    setup: async () => {
      const store = await createStore()
      const otherStore = await createStore()
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

/** Bounds a test body by itself, so a runner that ignores the timeout it is given still ends a hung test. */
async function withTimeout(work: Promise<void>, timeoutMs: number, name: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`"${name}" did not finish within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves once `condition()` holds; fails with `what` if it does not within `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await sleep(5)
  }
}

/**
 * A store wrapper that counts calls, to prove how many attempts reach the store. `whole`: it also passes on
 * `leaveQueue` and `subscribeToReleases` (uncounted), so that it queues and listens as the store does.
 */
export function countingStore(
  store: LockStore,
  whole = false,
): { store: LockStore; calls: () => number; acquires: () => number } {
  let calls = 0
  let acquires = 0
  const counted: LockStore = {
    acquire: (...args) => {
      calls++
      acquires++
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
  if (whole && store.leaveQueue) counted.leaveQueue = store.leaveQueue.bind(store)
  if (whole && store.subscribeToReleases) counted.subscribeToReleases = store.subscribeToReleases.bind(store)
  return { store: counted, calls: () => calls, acquires: () => acquires }
}
