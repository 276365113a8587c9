import { afterEach, describe, expect, test, vi } from 'vitest'
import { E_INVALID_ARGUMENT, E_LOCK_NOT_OWNED } from './errors.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('a late extend reply never brings a released lock back', () => {
  test('extend answered after release() resolved leaves the lock released', async () => {
    const store = new MemoryStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    await lock.acquire()
    const reply = deferred<boolean>()
    store.extend = () => reply.promise
    const extending = lock.extend()
    await lock.release()
    reply.resolve(true)
    await extending.catch(() => {})
    expect(lock.isExpired()).toBe(true)
    expect(lock.getRemainingTime()).toBe(0)
    expect(JSON.parse(lock.serialize()).held).toBe(false)
    // await using must not try to release it again (that would throw E_LOCK_NOT_OWNED).
    await expect(lock[Symbol.asyncDispose]()).resolves.toBeUndefined()
  })

  test('keepAlive().stop() disowns an extension in flight and resolves once it has settled', async () => {
    const store = new MemoryStore()
    const lock = new LockFactory(store).createLock('k', 100)
    await lock.acquire()
    const called = deferred<void>()
    const reply = deferred<boolean>()
    store.extend = () => {
      called.resolve()
      return reply.promise
    }
    const keeper = lock.keepAlive({ renewAtRemaining: 0.95 })
    await called.promise
    let stopped = false
    const stopping = Promise.resolve(keeper.stop()).then(() => {
      stopped = true
    })
    await lock.release()
    await sleep(5)
    expect(stopped).toBe(false)
    reply.resolve(true)
    await stopping
    expect(lock.isExpired()).toBe(true)
    expect(keeper.signal.aborted).toBe(false)
  })
})

describe('local timing uses the monotonic clock', () => {
  test('a wall-clock step of 60 s neither shortens the lease estimate nor loses the lock', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('k', 1_000)
    await lock.acquire()
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 60_000)
    expect(lock.isExpired()).toBe(false)
    expect(lock.getRemainingTime()).toBeGreaterThan(500)
    const keeper = lock.keepAlive({ extend: false })
    await sleep(30)
    expect(keeper.signal.aborted).toBe(false)
    await keeper.stop()
    vi.useRealTimers()
    await lock.release()
  })

  test('serialize and restore still carry the lease over a wall-clock base', async () => {
    const factory = new LockFactory(new MemoryStore())
    const lock = factory.createLock('k', '10s')
    await lock.acquire()
    const restored = factory.restoreLock(lock.serialize())
    expect(restored.getRemainingTime()).toBeGreaterThan(9_000)
    expect(restored.getRemainingTime()).toBeLessThanOrEqual(10_000)
    await restored.release()
  })
})

/** A memory store that counts the extensions it receives. */
function countingExtends() {
  const store = new MemoryStore()
  let count = 0
  const extend = store.extend.bind(store)
  store.extend = (...args) => {
    count++
    return extend(...args)
  }
  return { store, extensions: () => count }
}

describe('keep-alive timers are safe for every accepted duration', () => {
  test('a 50-day lease with autoExtend sends no extension while its work runs', async () => {
    const { store, extensions } = countingExtends()
    const lock = new LockFactory(store).createLock('k', '50d')
    await lock.run(() => sleep(100), { autoExtend: true })
    expect(extensions()).toBe(0)
  })

  test('the longest accepted lease works with keepAlive too', async () => {
    const { store, extensions } = countingExtends()
    const lock = new LockFactory(store).createLock('k', Number.MAX_SAFE_INTEGER)
    await lock.acquire()
    const keeper = lock.keepAlive({ retryDelay: '30d' })
    await sleep(50)
    expect(extensions()).toBe(0)
    expect(keeper.signal.aborted).toBe(false)
    await keeper.stop()
    await lock.release()
  })
})

describe('keepAlive options and state', () => {
  test.each([1.5, Number.NaN, 0, 1, -0.5, '0.5'])('renewAtRemaining %j is E_INVALID_ARGUMENT', async (renewAtRemaining) => {
    const lock = new LockFactory(new MemoryStore()).createLock('k', '10s')
    await lock.acquire()
    expect(() => lock.keepAlive({ renewAtRemaining: renewAtRemaining as number })).toThrow(E_INVALID_ARGUMENT)
    await lock.release()
  })

  test('keepAlive on a lock that is not held is E_LOCK_NOT_OWNED, not a "lost while held" signal', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('k', '10s')
    expect(() => lock.keepAlive()).toThrow(E_LOCK_NOT_OWNED)
    await lock.acquire()
    await lock.release()
    expect(() => lock.keepAlive()).toThrow(/not held/)
  })

  test('a keep-alive stops by itself when its lock is released, without reporting a loss', async () => {
    const lock = new LockFactory(new MemoryStore()).createLock('k', 60)
    await lock.acquire()
    const keeper = lock.keepAlive()
    await lock.release()
    await sleep(150)
    expect(keeper.signal.aborted).toBe(false)
  })
})
