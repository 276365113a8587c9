import assert from 'node:assert/strict'
import { E_LOCK_STORAGE_ERROR } from '../errors.js'
import { LockFactory } from '../lock_factory.js'
import type { Suite } from './context.js'

/** What the suite allows one call; the driver's own connect timeout may be longer, this bounds the test. */
const OPERATION_TIMEOUT_MS = 2_000
/** The driver's own failure, with its cause, must surface within this. */
const BOUND_MS = 15_000

/** Every operation against a backend that does not answer fails with a storage error, in bounded time. */
export function failureTests({ test, options }: Suite): void {
  const createUnreachable = options.createUnreachableStore
  if (createUnreachable === undefined) return

  const isStorageError = (error: unknown) => {
    assert.ok(error instanceof E_LOCK_STORAGE_ERROR, `expected E_LOCK_STORAGE_ERROR, got ${String(error)}`)
    assert.equal(error.code, 'E_LOCK_STORAGE_ERROR')
    return true
  }

  test('an unreachable backend is a storage error, never "not acquired" or "not owned"', async () => {
    const store = await createUnreachable()
    try {
      const factory = new LockFactory(store, { operationTimeout: OPERATION_TIMEOUT_MS })
      const lock = factory.createLock('verrou:conformance:unreachable', '10s')
      const started = performance.now()
      await assert.rejects(lock.acquireImmediately(), isStorageError)
      await assert.rejects(lock.acquire({ retry: { attempts: 2, delay: 10 } }), isStorageError)
      await assert.rejects(
        lock.run(() => 'never'),
        isStorageError,
      )
      await assert.rejects(lock.release(), isStorageError)
      await assert.rejects(lock.extend(), isStorageError)
      await assert.rejects(lock.isLocked(), isStorageError)
      await assert.rejects(lock.forceRelease(), isStorageError)
      const elapsed = performance.now() - started
      assert.ok(elapsed < 7 * (OPERATION_TIMEOUT_MS + 500), `all calls failed within a bounded time (${Math.round(elapsed)} ms)`)
    } finally {
      await options.closeStore?.(store)
    }
  })

  test('the driver reports the backend failure itself, with the backend error as cause', async () => {
    const store = await createUnreachable()
    try {
      const lock = new LockFactory(store, { operationTimeout: BOUND_MS }).createLock('verrou:conformance:unreachable', '10s')
      const error = await lock.acquireImmediately().then(
        () => assert.fail('acquire must not succeed'),
        (caught: unknown) => caught,
      )
      assert.ok(error instanceof E_LOCK_STORAGE_ERROR)
      assert.ok(error.cause !== undefined, 'cause is set')
    } finally {
      await options.closeStore?.(store)
    }
  })
}
