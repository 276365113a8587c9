import { describe, expect, test } from 'vitest'
import { E_LOCK_STORAGE_ERROR } from './errors.js'
import { LockFactory } from './lock_factory.js'
import type { Logger } from './logger.js'
import { MemoryStore } from './memory_store.js'
import type { AcquireResult, HandOver } from './store.js'

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (error: unknown) => void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * A memory store whose grants are reported as handed over: the lock is really taken, and the claim settles
 * when the test says so.
 */
function handingStore(lease: number) {
  const store = new MemoryStore()
  const acquire = store.acquire.bind(store)
  const claims: Deferred<boolean>[] = []
  store.acquire = async (...args): Promise<AcquireResult> => {
    const result = await acquire(...args)
    if (!result.acquired) return result
    const claim = deferred<boolean>()
    claims.push(claim)
    return { ...result, handedOver: { lease, claimed: claim.promise } }
  }
  return { store, claims }
}

function recordingLogger() {
  const warnings: { context: unknown; message: string }[] = []
  const logger: Logger = {
    warn: (context: unknown, message?: string) => warnings.push({ context, message: message ?? '' }),
    info: () => {},
    debug: () => {},
    error: () => {},
    trace: () => {},
    fatal: () => {},
    child: () => logger,
  } as unknown as Logger
  return { logger, warnings }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('a lock handed over by a release', () => {
  test('counts only on the claim window until the claim lands, then on its ttl', async () => {
    const { store, claims } = handingStore(1_500)
    const lock = new LockFactory(store).createLock('k', '30s')
    expect(await lock.acquireImmediately()).toBe(true)
    expect(lock.getRemainingTime()).toBeLessThanOrEqual(1_500)
    expect(lock.isExpired()).toBe(false)

    claims[0]!.resolve(true)
    await flush()
    expect(lock.getRemainingTime()).toBeGreaterThan(29_000)
  })

  test('a claim window of 0 ms reads as expired at once, until the claim lands', async () => {
    const { store, claims } = handingStore(0)
    const lock = new LockFactory(store).createLock('k', '30s')
    expect(await lock.acquireImmediately()).toBe(true)
    expect(lock.isExpired()).toBe(true)
    claims[0]!.resolve(true)
    await flush()
    expect(lock.isExpired()).toBe(false)
  })

  test('a ttl shorter than the claim window stays the estimate', async () => {
    const { store, claims } = handingStore(5_000)
    const lock = new LockFactory(store).createLock('k', '1s')
    expect(await lock.acquireImmediately()).toBe(true)
    expect(lock.getRemainingTime()).toBeLessThanOrEqual(1_000)
    claims[0]!.resolve(true)
    await flush()
    expect(lock.getRemainingTime()).toBeLessThanOrEqual(1_000)
  })

  test('a lease that never expires is the claim window until claimed', async () => {
    const { store, claims } = handingStore(2_000)
    const lock = new LockFactory(store).createLock('k', null)
    expect(await lock.acquireImmediately()).toBe(true)
    expect(lock.getRemainingTime()).toBeLessThanOrEqual(2_000)
    claims[0]!.resolve(true)
    await flush()
    expect(lock.getRemainingTime()).toBeNull()
  })

  test('a claim that finds the grant gone ends the holding', async () => {
    const { store, claims } = handingStore(2_000)
    const lock = new LockFactory(store).createLock('k', '30s')
    expect(await lock.acquireImmediately()).toBe(true)
    claims[0]!.resolve(false)
    await flush()
    expect(lock.isExpired()).toBe(true)
    expect(lock.getRemainingTime()).toBe(0)
  })

  test('a claim that fails is logged, and the lock keeps only its claim window', async () => {
    const { store, claims } = handingStore(1_000)
    const { logger, warnings } = recordingLogger()
    const lock = new LockFactory(store, { logger }).createLock('k', '30s')
    expect(await lock.acquireImmediately()).toBe(true)
    const failure = new Error('connection reset')
    claims[0]!.reject(failure)
    await flush()
    expect(lock.getRemainingTime()).toBeLessThanOrEqual(1_000)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.context).toMatchObject({ key: 'k', err: failure })
  })

  test('a claim that settles after the lock was released changes nothing', async () => {
    const { store, claims } = handingStore(2_000)
    const { logger, warnings } = recordingLogger()
    const lock = new LockFactory(store, { logger }).createLock('k', '30s')
    expect(await lock.acquireImmediately()).toBe(true)
    await lock.release()
    claims[0]!.resolve(true)
    await flush()
    expect(lock.isExpired()).toBe(true)

    expect(await lock.acquireImmediately()).toBe(true)
    claims[0]!.reject(new Error('late'))
    await flush()
    expect(warnings).toHaveLength(0)
    claims[1]!.resolve(true)
    await flush()
    expect(lock.getRemainingTime()).toBeGreaterThan(29_000)
  })

  test.each([
    ['a negative lease', () => ({ lease: -1, claimed: Promise.resolve(true) })],
    ['an infinite lease', () => ({ lease: Number.POSITIVE_INFINITY, claimed: Promise.resolve(true) })],
    ['no claim', () => ({ lease: 1_000 })],
    ['a claim that is not a promise', () => ({ lease: 1_000, claimed: true })],
    ['a rejected claim and a bad lease', () => ({ lease: 'soon', claimed: Promise.reject(new Error('x')) })],
  ])('%s is a storage error and the grant is released', async (_, handedOver) => {
    const store = new MemoryStore()
    const acquire = store.acquire.bind(store)
    let lies = 1
    store.acquire = async (...args) => {
      const result = await acquire(...args)
      return lies-- > 0 ? { ...result, handedOver: handedOver() as unknown as HandOver } : result
    }
    const lock = new LockFactory(store).createLock('k', '10s')
    await expect(lock.acquireImmediately()).rejects.toBeInstanceOf(E_LOCK_STORAGE_ERROR)
    // Given back: another owner gets it at once.
    expect(await new LockFactory(store).createLock('k', '10s').acquireImmediately()).toBe(true)
  })
})
