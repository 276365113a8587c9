import type { LockStore } from '../store.js'

/** The parts of a test runner the suite needs: vitest's and node:test's exports both fit. */
export interface TestRunner {
  describe: (name: string, body: () => void) => unknown
  test: (name: string, body: () => Promise<void> | void) => unknown
  /** vitest `beforeAll`, node:test `before`. */
  beforeAll?: (body: () => Promise<void> | void) => unknown
  /** vitest `afterAll`, node:test `after`. */
  afterAll?: (body: () => Promise<void> | void) => unknown
}

export interface ConformanceOptions {
  /** Shown in the test names. */
  name: string
  /**
   * Returns a store connected to the backend under test. Called once per test, sometimes twice (two stores
   * on one backend stand for two processes); it may hand back one shared instance. Tests use fresh random
   * keys, so the backend need not be emptied between tests.
   */
  createStore: () => LockStore | Promise<LockStore>
  runner: TestRunner
  /**
   * Extra milliseconds to wait after a lease should have ended, for stores whose expiry includes a
   * clock-skew allowance. Default 0.
   */
  expiryToleranceMs?: number
  /**
   * Optional: a store whose backend does not answer (wrong port, stopped server). Every operation must then
   * fail with E_LOCK_STORAGE_ERROR, never be reported as "not acquired" or "not owned".
   */
  createUnreachableStore?: () => LockStore | Promise<LockStore>
  /** Optional: called after the suite with every distinct store it created. */
  closeStore?: (store: LockStore) => Promise<void> | void
}

export function runLockStoreConformance(options: ConformanceOptions): void {
  void options
}
