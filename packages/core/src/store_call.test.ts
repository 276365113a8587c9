import { describe, expect, test } from 'vitest'
import { E_INVALID_ARGUMENT, E_LOCK_STORAGE_ERROR } from './errors.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'
import type { AcquireResult } from './store.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function storageError(promise: Promise<unknown>): Promise<E_LOCK_STORAGE_ERROR> {
  const error = await promise.then(
    () => expect.fail('expected E_LOCK_STORAGE_ERROR'),
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(E_LOCK_STORAGE_ERROR)
  return error as E_LOCK_STORAGE_ERROR
}

/** A memory store whose acquire grants for real, then answers `reply` instead. */
function lyingStore(reply: (real: AcquireResult) => unknown) {
  const store = new MemoryStore()
  const acquire = store.acquire.bind(store)
  let attempts = 0
  store.acquire = async (...args) => {
    attempts++
    return reply(await acquire(...args)) as AcquireResult
  }
  return { store, attempts: () => attempts }
}

describe('every store reply is checked', () => {
  test.each([
    ['a string token', { acquired: true, fencingToken: 'abc' }],
    ['a zero token', { acquired: true, fencingToken: 0 }],
    ['a fractional token', { acquired: true, fencingToken: 1.5 }],
    ['an unsafe token', { acquired: true, fencingToken: 2 ** 60 }],
    ['a missing reply', undefined],
    ['acquired as a string', { acquired: 'true', fencingToken: 1 }],
  ])('%s is a storage error and the grant is released', async (_, reply) => {
    const { store } = lyingStore(() => reply)
    const error = await storageError(new LockFactory(store).createLock('k', '10s').acquire())
    expect(error.operation).toBe('acquire')
    expect(error.message).toMatch(/invalid reply/)
    await sleep(5)
    expect(await store.isLocked('k')).toBe(false)
  })

  test.each([Number.NaN, Number.POSITIVE_INFINITY, -5, '100'])(
    'expiresIn %j is a storage error after one attempt, not a busy loop',
    async (expiresIn) => {
      const { store, attempts } = lyingStore((real) => (real.acquired ? real : { acquired: false, expiresIn }))
      const factory = new LockFactory(store)
      await factory.createLock('k', '10s').acquire()
      const before = attempts()
      await storageError(factory.createLock('k').acquire({ retry: { timeout: 500 } }))
      expect(attempts() - before).toBe(1)
    },
  )

  test.each([-1, 1.5, '0', 2 ** 60, null, Number.NaN])(
    'position %j is a storage error, and the waiter leaves the queue it joined',
    async (position) => {
      const { store, attempts } = lyingStore((real) => (real.acquired ? real : { ...real, position }))
      const factory = new LockFactory(store)
      const holder = factory.createLock('k', '10s')
      await holder.acquire()
      const before = attempts()
      await storageError(factory.createLock('k').acquire({ retry: { timeout: 500 } }))
      expect(attempts() - before).toBe(1)
      await holder.release()
      // Its place is gone: a newcomer that does not wait is not held back by it.
      expect(await factory.createLock('k').acquireImmediately()).toBe(true)
    },
  )

  test('release, extend and isLocked must answer real booleans', async () => {
    const store = new MemoryStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    await lock.acquire()
    store.release = async () => 'yes' as never
    store.extend = async () => 1 as never
    store.isLocked = async () => null as never
    expect((await storageError(lock.release())).operation).toBe('release')
    expect((await storageError(lock.extend())).operation).toBe('extend')
    expect((await storageError(lock.isLocked())).message).toMatch(/invalid reply/)
  })
})

describe('operation timeouts of any accepted length', () => {
  test("operationTimeout '30d' does not fail calls after a millisecond", async () => {
    const store = new MemoryStore()
    const acquire = store.acquire.bind(store)
    store.acquire = async (...args) => {
      await sleep(20)
      return acquire(...args)
    }
    const lock = new LockFactory(store, { operationTimeout: '30d' }).createLock('k')
    expect(await lock.acquire()).toBe(true)
    await lock.release()
  })
})

describe('storage error messages', () => {
  class FlakyStore extends MemoryStore {
    override async acquire(): Promise<AcquireResult> {
      throw { status: 503, detail: 'overloaded' }
    }
  }

  test('name the store, the operation and a shortened key, and describe a non-Error cause', async () => {
    const key = `invoice:${'x'.repeat(3_000)}`
    const error = await storageError(new LockFactory(new FlakyStore()).createLock(key).acquire())
    expect(error.message.length).toBeLessThan(300)
    expect(error.message).toContain('FlakyStore')
    expect(error.message).toContain('acquire')
    expect(error.message).toContain('invoice:xxx')
    expect(error.message).toContain('3008 chars')
    expect(error.message).not.toContain('[object Object]')
    expect(error.message).toContain('status')
    expect(error.key).toBe(key)
    expect(error.cause).toEqual({ status: 503, detail: 'overloaded' })
  })

  test('a timed-out call says which store and how long', async () => {
    const store = new MemoryStore()
    store.isLocked = () => new Promise<boolean>(() => {})
    const error = await storageError(new LockFactory(store, { operationTimeout: 20 }).createLock('k').isLocked())
    expect(error.message).toMatch(/MemoryStore did not answer .* "k" within 20 ms/)
  })
})

describe('an acquire that got no answer may have been granted: the same Lock is not locked out by it', () => {
  /**
   * A memory store that logs every acquire and release, and can be told how to answer the next acquire:
   * `lost` grants for real then fails as a dropped connection would; `hang` grants for real and never answers.
   */
  function unreliableStore() {
    const store = new MemoryStore()
    const acquire = store.acquire.bind(store)
    const release = store.release.bind(store)
    const calls: string[] = []
    let next: 'lost' | 'hang' | 'invalid' | undefined
    store.acquire = async (key, owner, ttl) => {
      calls.push(`acquire ${owner}`)
      const mode = next
      next = undefined
      if (mode === 'invalid') throw new E_INVALID_ARGUMENT('refused before anything was written')
      const result = await acquire(key, owner, ttl)
      if (mode === 'lost') throw new Error('socket hang up')
      if (mode === 'hang') return new Promise<AcquireResult>(() => {})
      return result
    }
    store.release = async (key, owner) => {
      calls.push(`release ${owner}`)
      return release(key, owner)
    }
    return {
      store,
      calls,
      failNext(mode: 'lost' | 'hang' | 'invalid') {
        next = mode
      },
    }
  }

  test('a grant whose reply was lost is released before the next acquire, which then succeeds', async () => {
    const { store, calls, failNext } = unreliableStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    const owner = lock.getOwner()
    failNext('lost')
    await storageError(lock.acquireImmediately())
    // The store did grant it: without the release first, this owner would be refused for 10 s.
    expect(await store.isLocked('k')).toBe(true)
    expect(await lock.acquireImmediately()).toBe(true)
    expect(calls).toEqual([`acquire ${owner}`, `release ${owner}`, `acquire ${owner}`])
    await lock.release()
    // The doubt was settled once: the next cycle is one acquire and one release again.
    calls.length = 0
    expect(await lock.acquireImmediately()).toBe(true)
    await lock.release()
    expect(calls).toEqual([`acquire ${owner}`, `release ${owner}`])
  })

  test('a grant abandoned at the operation timeout and never answered is released before the next acquire', async () => {
    const { store, calls, failNext } = unreliableStore()
    const lock = new LockFactory(store, { operationTimeout: 30 }).createLock('k', '10s')
    failNext('hang')
    await storageError(lock.acquireImmediately())
    expect(await store.isLocked('k')).toBe(true)
    // acquire with retries makes the same first move.
    expect(await lock.acquire({ retry: { timeout: 1_000 } })).toBe(true)
    expect(calls.filter((call) => call.startsWith('release'))).toHaveLength(1)
    await lock.release()
    expect(await store.isLocked('k')).toBe(false)
  })

  test('the release first frees only this owner: a lock someone else took meanwhile stays theirs', async () => {
    const { store, failNext } = unreliableStore()
    const factory = new LockFactory(store)
    const lock = factory.createLock('k', 30)
    failNext('lost')
    await storageError(lock.acquireImmediately())
    await sleep(50)
    // The orphaned grant ran out; another owner holds the key now.
    const other = factory.createLock('k', '10s')
    expect(await other.acquireImmediately()).toBe(true)
    expect(await lock.acquireImmediately()).toBe(false)
    expect(await other.isLocked()).toBe(true)
    await other.release()
    expect(await lock.acquireImmediately()).toBe(true)
    await lock.release()
  })

  test('a call refused on purpose before it reached the store (an invalid argument) costs no release', async () => {
    const { store, calls, failNext } = unreliableStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    const owner = lock.getOwner()
    failNext('invalid')
    await expect(lock.acquireImmediately()).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    expect(await lock.acquireImmediately()).toBe(true)
    expect(calls).toEqual([`acquire ${owner}`, `acquire ${owner}`])
    await lock.release()
  })

  test('when the release first fails too, the acquire fails with that storage error and the next one tries again', async () => {
    const { store, calls, failNext } = unreliableStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    const owner = lock.getOwner()
    failNext('lost')
    await storageError(lock.acquireImmediately())
    const release = store.release
    store.release = async () => {
      calls.push('release failed')
      throw new Error('connection refused')
    }
    const error = await storageError(lock.acquireImmediately())
    expect(error.operation).toBe('release')
    store.release = release
    expect(await lock.acquireImmediately()).toBe(true)
    expect(calls).toEqual([`acquire ${owner}`, 'release failed', `release ${owner}`, `acquire ${owner}`])
    await lock.release()
  })
})
