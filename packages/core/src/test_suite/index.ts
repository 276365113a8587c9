import type { LockStore } from '../store.js'
import { concurrencyTests } from './concurrency.js'
import { createSuite } from './context.js'
import { expiryTests } from './expiry.js'
import { failureTests } from './failures.js'
import { fencingTests } from './fencing.js'
import { holdingTests } from './holding.js'
import { inputValidationTests } from './input_validation.js'
import { ownershipTests } from './ownership.js'
import { runTests } from './run.js'
import { serializationTests } from './serialization.js'
import { releaseNotificationTests, waitingTests } from './waiting.js'

/** The parts of a test runner the suite needs: vitest's and node:test's exports both fit. */
export interface TestRunner {
  describe: (name: string, body: () => void) => unknown
  test: (name: string, body: () => Promise<void>) => unknown
  /** vitest `beforeAll`, node:test `before`. */
  beforeAll?: (body: () => Promise<void> | void) => unknown
  /** vitest `afterAll`, node:test `after`. */
  afterAll?: (body: () => Promise<void> | void) => unknown
}

export interface ConformanceOptions {
  /** Shown in the test names. */
  name: string
  /**
   * Returns a store connected to the backend under test. Called twice per test (two stores on one backend
   * stand for two processes); it may hand back one shared instance. Tests use fresh random keys, so the
   * backend need not be emptied between tests.
   */
  createStore: () => LockStore | Promise<LockStore>
  runner: TestRunner
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
  /** Optional: called after the suite with every distinct store it created. */
  closeStore?: (store: LockStore) => Promise<void> | void
}

/**
 * Registers the conformance suite of the LockStore contract with your test runner. Passing it is what
 * makes a driver a Verrou driver:
 *
 * ```ts
 * import { describe, test, afterAll } from 'vitest'
 * import { runLockStoreConformance } from '@verrou/core/test-suite'
 *
 * runLockStoreConformance({ name: 'my store', createStore: () => new MyStore(), runner: { describe, test, afterAll } })
 * ```
 */
export function runLockStoreConformance(options: ConformanceOptions): void {
  const stores = new Set<LockStore>()
  const suite = createSuite(options, stores)
  const { describe, afterAll } = options.runner

  describe(`LockStore conformance: ${options.name}`, () => {
    describe('ownership', () => ownershipTests(suite))
    describe('expiry', () => expiryTests(suite))
    describe('concurrency', () => concurrencyTests(suite))
    describe('fencing tokens', () => fencingTests(suite))
    describe('run', () => runTests(suite))
    describe('serialization', () => serializationTests(suite))
    describe('input validation', () => inputValidationTests(suite))
    describe('waiting', () => waitingTests(suite))
    describe('holding', () => holdingTests(suite))
    describe('release notifications', () => releaseNotificationTests(suite))
    if (options.createUnreachableStore) describe('backend failures', () => failureTests(suite))
    afterAll?.(async () => {
      if (options.closeStore) for (const store of stores) await options.closeStore(store)
    })
  })
}
