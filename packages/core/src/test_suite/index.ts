import type { LockStore } from '../store.js'
import { attemptTests } from './attempts.js'
import { type StoreCapabilities, validateCapabilities } from './capabilities.js'
import { capabilityTests, closingTests } from './closing.js'
import { concurrencyTests } from './concurrency.js'
import { createSuite, type Suite } from './context.js'
import { expiryTests } from './expiry.js'
import { failureTests } from './failures.js'
import { fairWaitingTests } from './fair_waiting.js'
import { fencingAfterIdleTests, fencingTests } from './fencing.js'
import { holdingTests } from './holding.js'
import { ownershipTests } from './ownership.js'
import { readWriteLockTests } from './read_write_locks.js'
import { releaseNotificationTests, wakingTests } from './release_notifications.js'
import { runTests } from './run.js'
import { semaphoreTests } from './semaphores.js'
import { serializationTests } from './serialization.js'
import { waitQueueTests } from './wait_queue.js'
import { waitingTests } from './waiting.js'

export { CAPABILITIES, type CapabilityName, type StoreCapabilities } from './capabilities.js'
export { DEFAULT_TEST_TIMEOUT_MS } from './context.js'

/**
 * The parts of a test runner the suite needs. vitest's and jest's `describe`/`test`/`afterAll` fit as they
 * are; node:test and mocha take the timeout differently, so wrap their `test`:
 *
 * ```ts
 * // node:test
 * runner: { describe, test: (name, body, timeoutMs) => test(name, { timeout: timeoutMs }, body), afterAll: after }
 * // mocha
 * runner: { describe, test: (name, body, timeoutMs) => it(name, body).timeout(timeoutMs), afterAll: after }
 * ```
 */
export interface TestRunner {
  describe: (name: string, body: () => void) => unknown
  /**
   * Registers one test. `timeoutMs` is how long the runner should let it run: the suite already stops a test
   * itself a little earlier, with a message naming it, but runners' own defaults (jest 5 s, mocha 2 s) are
   * shorter than some tests, so pass it on.
   */
  test: (name: string, body: () => Promise<void>, timeoutMs: number) => unknown
  /** vitest/jest `afterAll`, node:test/mocha `after`: closes the stores the suite created. */
  afterAll?: (body: () => Promise<void> | void) => unknown
}

export interface ConformanceOptions {
  /** Shown in the test names. */
  name: string
  /**
   * Returns a store connected to the backend under test. Called at least twice per test (two stores on one
   * backend stand for two processes), so reuse ONE pool or client across all calls: open it once at the top
   * of the test file, hand it to every store, end it after the suite. A new connection per call makes the
   * suite slow and can exhaust the server's connection limit. Returning a new store object each time is
   * fine and preferred (the "closing" group closes some); tests use fresh random keys, so the backend need
   * not be emptied between tests.
   */
  createStore: () => LockStore | Promise<LockStore>
  runner: TestRunner
  /** What the store offers; every switch is required, and a store that does not match fails loudly. */
  capabilities: StoreCapabilities
  /** Per-test timeout in milliseconds (default `DEFAULT_TEST_TIMEOUT_MS`, 30 s). Raise it for slow backends. */
  testTimeoutMs?: number
  /**
   * Extra milliseconds to wait after a lease should have ended, for stores whose expiry includes a
   * clock-skew allowance. Default 0.
   */
  expiryToleranceMs?: number
  /**
   * Optional: a store whose backend does not answer (closed port, stopped server). Every operation must then
   * fail with E_LOCK_STORAGE_ERROR, never be reported as "not acquired" or "not owned".
   */
  createUnreachableStore?: () => LockStore | Promise<LockStore>
  /**
   * Called with every distinct store the suite created, once: when the test that created it ends (a driver
   * that opens a connection per store must not run the server out of them). Default: the store's own
   * `close()`. Close what your `createStore` opened for that store here.
   */
  closeStore?: (store: LockStore) => Promise<void> | void
}

/**
 * The groups, in the order they are registered. None is left out silently: a group needing a capability the
 * store declared off registers one test checking the store really lacks it. "backend failures" runs when
 * `createUnreachableStore` is given; "closing" comes last, as it closes stores.
 */
const GROUPS: readonly (readonly [string, (suite: Suite) => void])[] = [
  ['capabilities', capabilityTests],
  ['ownership', ownershipTests],
  ['expiry', expiryTests],
  ['concurrency', concurrencyTests],
  ['fencing tokens', fencingTests],
  ['fencing tokens after the key sat idle', fencingAfterIdleTests],
  ['run', runTests],
  ['serialization', serializationTests],
  ['attempts', attemptTests],
  ['waiting', waitingTests],
  ['holding', holdingTests],
  ['waking waiters', wakingTests],
  ['release notifications', releaseNotificationTests],
  [
    'wait queue',
    (suite) => {
      waitQueueTests(suite)
      fairWaitingTests(suite)
    },
  ],
  ['semaphores', semaphoreTests],
  ['read-write locks', readWriteLockTests],
  ['backend failures', failureTests],
  ['closing', closingTests],
]

/** The names of the suite's groups, as they appear in test names. */
export const CONFORMANCE_GROUPS: readonly string[] = GROUPS.map(([name]) => name)

/**
 * Registers the conformance suite of the LockStore contract with your test runner. Passing it is what
 * makes a driver a Verrou driver:
 *
 * ```ts
 * import { afterAll, describe, test } from 'vitest'
 * import { runLockStoreConformance } from '@verrou/core/test-suite'
 *
 * const client = createClient() // one client for the whole suite
 * afterAll(() => client.end())
 *
 * runLockStoreConformance({
 *   name: 'my store',
 *   createStore: () => new MyStore(client),
 *   capabilities: { releaseNotifications: false, close: false, waitQueue: false, sharedLocks: false },
 *   runner: { describe, test, afterAll },
 * })
 * ```
 *
 * A group a store cannot take part in (release notifications, wait queue, semaphores, read-write locks, closing) still registers one test that checks
 * the store really lacks what it declared it lacks; no group is left out silently.
 */
export function runLockStoreConformance(options: ConformanceOptions): void {
  const capabilities = validateCapabilities(options.capabilities)
  const stores = new Set<LockStore>()
  const suite = createSuite(options, capabilities, stores)
  const { describe, afterAll } = options.runner

  describe(`LockStore conformance: ${options.name}`, () => {
    for (const [name, register] of GROUPS) {
      if (name === 'backend failures' && !options.createUnreachableStore) continue
      describe(name, () => register(suite))
    }
    // Stores opened outside a test body (none today, but a group may) are closed with the suite.
    afterAll?.(async () => {
      const close = options.closeStore ?? ((store: LockStore) => store.close?.())
      for (const store of stores) await close(store)
    })
  })
}
