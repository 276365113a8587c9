import { describe, expect, test } from 'vitest'
import { E_INVALID_ARGUMENT, E_LOCK_NOT_OWNED } from './errors.js'
import { Lock } from './lock.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore, memoryStore } from './memory_store.js'
import type { LockStore, SharedLockStore } from './store.js'
import { Verrou } from './verrou.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A store without `shared`: the mutex methods of a memory store only. */
class MutexOnlyStore implements LockStore {
  readonly #inner = new MemoryStore()
  acquire: LockStore['acquire'] = (...args) => this.#inner.acquire(...args)
  release: LockStore['release'] = (...args) => this.#inner.release(...args)
  extend: LockStore['extend'] = (...args) => this.#inner.extend(...args)
  forceRelease: LockStore['forceRelease'] = (...args) => this.#inner.forceRelease(...args)
  isLocked: LockStore['isLocked'] = (...args) => this.#inner.isLocked(...args)
}

describe('createSemaphore', () => {
  test('permits are Locks: at most limit held, a released one is free again', async () => {
    const factory = new LockFactory(memoryStore())
    const permits = [1, 2, 3].map(() => factory.createSemaphore('exports', { limit: 2, ttl: '10s' }))
    expect(permits[0]).toBeInstanceOf(Lock)
    expect(permits[0]!.kind).toBe('permit')
    expect(permits[0]!.limit).toBe(2)
    expect(permits[0]!.ttl).toBe(10_000)
    expect(await permits[0]!.acquireImmediately()).toBe(true)
    expect(await permits[2]!.isLocked()).toBe(false)
    expect(await permits[1]!.acquireImmediately()).toBe(true)
    expect(await permits[2]!.isLocked()).toBe(true)
    expect(await permits[2]!.acquireImmediately()).toBe(false)
    const waiting = permits[2]!.acquire({ retry: { timeout: 2_000 } })
    await sleep(20)
    await permits[0]!.release()
    expect(await waiting).toBe(true)
    expect(permits[2]!.fencingToken).toBeGreaterThan(permits[1]!.fencingToken!)
    await expect(permits[0]!.release()).rejects.toThrow(E_LOCK_NOT_OWNED)
  })

  test('the ttl defaults to the factory default, the owner to a random id', () => {
    const factory = new LockFactory(memoryStore(), { defaultTtl: '5s' })
    const permit = factory.createSemaphore('k', { limit: 1 })
    expect(permit.ttl).toBe(5_000)
    expect(permit.getOwner()).not.toBe(factory.createSemaphore('k', { limit: 1 }).getOwner())
    expect(factory.createSemaphore('k', { limit: 1, owner: 'me', ttl: null })).toMatchObject({ ttl: null })
  })

  test('options are checked before anything reaches the store', () => {
    const factory = new LockFactory(memoryStore())
    for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3', undefined, null]) {
      expect(() => factory.createSemaphore('k', { limit } as never)).toThrow(E_INVALID_ARGUMENT)
    }
    expect(() => factory.createSemaphore('k', null as never)).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createSemaphore('', { limit: 1 })).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createSemaphore('k', { limit: 1, ttl: -1 })).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createSemaphore('k', { limit: 1, owner: '' })).toThrow(E_INVALID_ARGUMENT)
  })

  test('run, runImmediately and autoExtend work on a permit', async () => {
    const factory = new LockFactory(memoryStore())
    const permit = factory.createSemaphore('jobs', { limit: 1, ttl: 200 })
    const other = factory.createSemaphore('jobs', { limit: 1, ttl: 200 })
    const [ran, token] = await permit.run(
      async ({ fencingToken, signal }) => {
        expect(await other.runImmediately(() => 'no')).toEqual([false, null])
        await sleep(450)
        expect(signal.aborted).toBe(false)
        return fencingToken
      },
      { autoExtend: true },
    )
    expect(ran).toBe(true)
    expect(token).toBe(permit.fencingToken)
    expect(await other.isLocked()).toBe(false)
  })
})

describe('createReadWriteLock', () => {
  test('read and write are Locks of one owner; readers share, the writer excludes', async () => {
    const factory = new LockFactory(memoryStore())
    const doc = factory.createReadWriteLock('doc', '10s')
    const other = factory.createReadWriteLock('doc', '10s', { owner: 'other' })
    expect(doc.key).toBe('doc')
    expect(doc.read.kind).toBe('read')
    expect(doc.write.kind).toBe('write')
    expect(doc.read.getOwner()).toBe(doc.write.getOwner())
    expect(other.read.getOwner()).toBe('other')
    expect(await doc.read.acquireImmediately()).toBe(true)
    expect(await other.read.acquireImmediately()).toBe(true)
    expect(await other.write.isLocked()).toBe(true)
    expect(await other.read.isLocked()).toBe(false)
    await other.read.release()
    expect(await other.write.acquireImmediately()).toBe(false)
    await doc.read.release()
    expect(await other.write.acquireImmediately()).toBe(true)
    expect(await doc.read.isLocked()).toBe(true)
    expect(await doc.read.acquireImmediately()).toBe(false)
    // The writer's owner cannot release a read it does not hold, and the reader cannot release the write.
    await expect(other.read.release()).rejects.toThrow(E_LOCK_NOT_OWNED)
    await other.write.release()
  })

  test('await using releases a read at the end of the scope', async () => {
    const factory = new LockFactory(memoryStore())
    const doc = factory.createReadWriteLock('doc', '10s')
    {
      await using read = doc.read
      await read.acquire()
      expect(await doc.write.isLocked()).toBe(true)
    }
    expect(await doc.write.isLocked()).toBe(false)
  })

  test('a waiting writer gets the lock before readers that came after it', async () => {
    const factory = new LockFactory(memoryStore(), { retry: { timeout: 5_000 } })
    const order: string[] = []
    const first = factory.createReadWriteLock('doc', '10s')
    await first.read.acquire()
    const writer = factory.createReadWriteLock('doc', '10s')
    const writing = writer.write.run(async () => {
      order.push('write')
      await sleep(30)
    })
    await sleep(20)
    const late = factory.createReadWriteLock('doc', '10s')
    const reading = late.read.run(() => {
      order.push('read')
    })
    await sleep(20)
    expect(order).toEqual([])
    await first.read.release()
    await Promise.all([writing, reading])
    expect(order).toEqual(['write', 'read'])
  })

  test('an aborted waiting writer does not hold up the readers behind it', async () => {
    const factory = new LockFactory(memoryStore(), { retry: { timeout: 5_000 } })
    const holder = factory.createReadWriteLock('doc', '10s')
    await holder.read.acquire()
    const controller = new AbortController()
    const writer = factory.createReadWriteLock('doc', '10s').write.acquire({ signal: controller.signal })
    await sleep(20)
    const reader = factory.createReadWriteLock('doc', '10s').read
    const reading = reader.acquire()
    await sleep(20)
    controller.abort(new Error('gave up'))
    await expect(writer).rejects.toThrow('gave up')
    expect(await reading).toBe(true)
  })

  test('the ttl and owner are checked first', () => {
    const factory = new LockFactory(memoryStore())
    expect(() => factory.createReadWriteLock('doc', 0)).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createReadWriteLock('doc', '10s', { owner: '' })).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createReadWriteLock('doc', '10s', null as never)).toThrow(E_INVALID_ARGUMENT)
    expect(factory.createReadWriteLock('doc').read.ttl).toBe(30_000)
  })
})

describe('release subscriptions', () => {
  test('readers, writers and permits waiting on one key share one subscription, and each hears its turn', async () => {
    const inner = new MemoryStore()
    const innerShared = inner.shared as SharedLockStore
    let subscriptions = 0
    let active = 0
    const shared: SharedLockStore = {
      acquire: (...args) => innerShared.acquire(...args),
      release: (...args) => innerShared.release(...args),
      extend: (...args) => innerShared.extend(...args),
      forceRelease: (...args) => innerShared.forceRelease(...args),
      isLocked: (...args) => innerShared.isLocked(...args),
      leaveQueue: (...args) => innerShared.leaveQueue(...args),
      subscribeToReleases: async (key, listener) => {
        subscriptions += 1
        active += 1
        const unsubscribe = await innerShared.subscribeToReleases!(key, listener)
        return async () => {
          active -= 1
          await unsubscribe()
        }
      },
    }
    const store = Object.assign(Object.create(null) as object, {
      acquire: inner.acquire.bind(inner),
      release: inner.release.bind(inner),
      extend: inner.extend.bind(inner),
      forceRelease: inner.forceRelease.bind(inner),
      isLocked: inner.isLocked.bind(inner),
      shared,
    }) as LockStore
    // A long retry delay: only an announcement gets a waiter in quickly.
    const factory = new LockFactory(store, { retry: { delay: 5_000, timeout: 10_000 } })
    const holder = factory.createReadWriteLock('doc', '10s')
    await holder.write.acquire()
    const order: string[] = []
    const startedAt = performance.now()
    const waiting = [
      factory.createReadWriteLock('doc', '10s').read.run(() => void order.push('read')),
      factory.createSemaphore('doc', { limit: 2, ttl: '10s' }).run(() => void order.push('permit')),
      factory.createReadWriteLock('doc', '10s').write.run(() => void order.push('write')),
    ]
    await sleep(30)
    await holder.write.release()
    await Promise.all(waiting)
    expect(performance.now() - startedAt).toBeLessThan(600)
    expect(order.slice(0, 2).sort()).toEqual(['permit', 'read'])
    expect(order[2]).toBe('write')
    expect(subscriptions).toBe(1)
    expect(active).toBe(1)
  })
})

describe('stores without shared locks', () => {
  test('createSemaphore, createReadWriteLock and restoring a permit throw E_INVALID_ARGUMENT naming the store', () => {
    const factory = new LockFactory(new MutexOnlyStore())
    expect(() => factory.createSemaphore('k', { limit: 2 })).toThrow(/MutexOnlyStore does not support semaphores/)
    expect(() => factory.createSemaphore('k', { limit: 2 })).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createReadWriteLock('k')).toThrow(/MutexOnlyStore does not support read-write locks/)
    const permit = new LockFactory(memoryStore()).createSemaphore('k', { limit: 2 })
    expect(() => factory.restoreLock(permit.serialize())).toThrow(E_INVALID_ARGUMENT)
    expect(factory.createLock('k').kind).toBe('lock')
  })

  test('a malformed shared store is refused at construction', () => {
    const inner = new MemoryStore()
    const bare = {
      acquire: inner.acquire.bind(inner),
      release: inner.release.bind(inner),
      extend: inner.extend.bind(inner),
      forceRelease: inner.forceRelease.bind(inner),
      isLocked: inner.isLocked.bind(inner),
    }
    expect(() => new LockFactory({ ...bare, shared: 3 } as never)).toThrow(E_INVALID_ARGUMENT)
    const method = async () => true
    const noLeave = { acquire: method, release: method, extend: method, forceRelease: method, isLocked: method }
    expect(() => new LockFactory({ ...bare, shared: noLeave } as never)).toThrow(/leaveQueue/)
    expect(
      () => new LockFactory({ ...bare, shared: { ...noLeave, leaveQueue: method, subscribeToReleases: 1 } } as never),
    ).toThrow(/subscribeToReleases/)
    expect(new LockFactory({ ...bare, shared: { ...noLeave, leaveQueue: method } } as never)).toBeInstanceOf(LockFactory)
  })
})

describe('serialize and restoreLock keep the kind', () => {
  test('a permit, a read and a write restore as themselves and release the holding', async () => {
    const store = memoryStore()
    const factory = new LockFactory(store)
    const elsewhere = new LockFactory(store)
    const permit = factory.createSemaphore('s', { limit: 3, ttl: '10s' })
    const doc = factory.createReadWriteLock('d', '10s')
    const other = factory.createReadWriteLock('w', '10s')
    await permit.acquire()
    await doc.read.acquire()
    await other.write.acquire()
    for (const lock of [permit, doc.read, other.write]) {
      const restored = elsewhere.restoreLock(lock.serialize())
      expect(restored.kind).toBe(lock.kind)
      expect(restored.limit).toBe(lock.limit)
      expect(restored.getOwner()).toBe(lock.getOwner())
      expect(restored.fencingToken).toBe(lock.fencingToken)
      expect(restored.isExpired()).toBe(false)
      await restored.extend()
      await restored.release()
    }
    expect(await factory.createSemaphore('s', { limit: 1 }).isLocked()).toBe(false)
    expect(await factory.createReadWriteLock('d').write.isLocked()).toBe(false)
    expect(await factory.createReadWriteLock('w').write.isLocked()).toBe(false)
  })

  test('a mutex keeps format 1; one serialized before kinds existed restores as a mutex', () => {
    const factory = new LockFactory(memoryStore())
    const lock = factory.createLock('k', '10s')
    expect(JSON.parse(lock.serialize())).toMatchObject({ v: 1, kind: 'lock', limit: null })
    expect(JSON.parse(factory.createSemaphore('k', { limit: 4 }).serialize())).toMatchObject({ v: 2, kind: 'permit', limit: 4 })
    const old = JSON.stringify({ v: 1, key: 'k', owner: 'o', ttl: 1000, held: false, expiresAt: null, fencingToken: null })
    const restored = factory.restoreLock(old)
    expect(restored.kind).toBe('lock')
    expect(restored.limit).toBeNull()
  })

  test('a malformed kind or limit is E_INVALID_ARGUMENT', () => {
    const factory = new LockFactory(memoryStore())
    const base = { key: 'k', owner: 'o', ttl: 1000, held: false, expiresAt: null, fencingToken: null }
    for (const bad of [
      { v: 1, kind: 'permit', limit: 2 },
      { v: 1, kind: 'lock', limit: 2 },
      { v: 2, kind: 'lock', limit: null },
      { v: 2, kind: 'mutex', limit: null },
      { v: 2, kind: 'permit', limit: 0 },
      { v: 2, kind: 'permit', limit: 1.5 },
      { v: 2, kind: 'permit' },
      { v: 2, kind: 'read', limit: 3 },
      { v: 2, kind: 7, limit: null },
    ]) {
      expect(() => factory.restoreLock(JSON.stringify({ ...base, ...bad }))).toThrow(E_INVALID_ARGUMENT)
    }
  })
})

describe('Verrou', () => {
  test('createSemaphore and createReadWriteLock use the default store, and use(name) the named one', async () => {
    const first = memoryStore()
    const second = memoryStore()
    const verrou = new Verrou({ default: 'first', stores: { first: { driver: first }, second: { driver: second } } })
    const permit = verrou.createSemaphore('k', { limit: 1, ttl: '10s' })
    await permit.acquire()
    expect(await new LockFactory(first).createSemaphore('k', { limit: 1 }).isLocked()).toBe(true)
    expect(await verrou.use('second').createSemaphore('k', { limit: 1 }).isLocked()).toBe(false)
    const doc = verrou.use('second').createReadWriteLock('k', '10s')
    await doc.write.acquire()
    expect(await new LockFactory(second).createReadWriteLock('k').read.isLocked()).toBe(true)
    expect(await verrou.createReadWriteLock('k').read.isLocked()).toBe(false)
    expect(verrou.restoreLock(permit.serialize()).kind).toBe('permit')
  })
})
