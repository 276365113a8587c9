import { describe, expect, expectTypeOf, test } from 'vitest'
import { E_INVALID_ARGUMENT } from './errors.js'
import { Lock } from './lock.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore, memoryStore } from './memory_store.js'
import { Verrou } from './verrou.js'

describe('Verrou', () => {
  const first = memoryStore()
  const second = memoryStore()
  const verrou = new Verrou({
    default: 'first',
    stores: { first: { driver: first }, second: { driver: second } },
    retry: { attempts: 1 },
  })

  test('createLock and restoreLock use the default store', async () => {
    const lock = verrou.createLock('key', '10s')
    expect(lock).toBeInstanceOf(Lock)
    await lock.acquire()
    expect(await first.isLocked('key')).toBe(true)
    expect(await second.isLocked('key')).toBe(false)
    const restored = verrou.restoreLock(lock.serialize())
    await restored.release()
    expect(await first.isLocked('key')).toBe(false)
  })

  test('use(name) gives the named store, cached', async () => {
    const factory = verrou.use('second')
    expect(factory).toBeInstanceOf(LockFactory)
    expect(verrou.use('second')).toBe(factory)
    expect(factory.store).toBe(second)
    const lock = factory.createLock('other')
    await lock.acquire()
    expect(await second.isLocked('other')).toBe(true)
    await lock.release()
  })

  test('options like retry defaults reach every store', async () => {
    const holder = verrou.use('second').createLock('busy')
    await holder.acquire()
    const started = performance.now()
    expect(await verrou.use('second').createLock('busy').acquire()).toBe(false)
    expect(performance.now() - started).toBeLessThan(200)
    await holder.release()
  })

  test('an unknown store is a type error and a runtime error', () => {
    // @ts-expect-error 'third' is not a configured store
    expect(() => verrou.use('third')).toThrow(E_INVALID_ARGUMENT)
    expect(
      () =>
        new Verrou({
          // @ts-expect-error the default must be one of the stores
          default: 'missing',
          stores: { memory: { driver: new MemoryStore() } },
        }),
    ).toThrow(E_INVALID_ARGUMENT)
    expectTypeOf(verrou.use).parameter(0).toEqualTypeOf<'first' | 'second'>()
  })
})

describe('Verrou validates its config at construction, as LockFactory does', () => {
  const captured = (build: () => unknown) => {
    try {
      build()
    } catch (error) {
      return error as Error
    }
    return undefined
  }

  test.each([
    ['attempts: 0', { retry: { attempts: 0 } }],
    ['defaultTtl: -5', { defaultTtl: -5 }],
    ['operationTimeout: NaN', { operationTimeout: Number.NaN }],
    ['a logger without methods', { logger: {} }],
  ])('%s throws the same E_INVALID_ARGUMENT as LockFactory', (_, options) => {
    const fromFactory = captured(() => new LockFactory(new MemoryStore(), options as never))
    const fromVerrou = captured(
      () => new Verrou({ default: 'memory', stores: { memory: { driver: new MemoryStore() } }, ...(options as object) }),
    )
    expect(fromFactory).toBeInstanceOf(E_INVALID_ARGUMENT)
    expect(fromVerrou).toBeInstanceOf(E_INVALID_ARGUMENT)
    expect(fromVerrou?.message).toBe(fromFactory?.message)
  })

  test('a store that is null or not a store fails at construction, not at use()', () => {
    for (const driver of [null, {}, { acquire: () => {} }]) {
      const build = () =>
        new Verrou({ default: 'good', stores: { good: { driver: new MemoryStore() }, broken: { driver: driver as never } } })
      expect(build).toThrow(E_INVALID_ARGUMENT)
      expect(build).toThrow(/broken/)
    }
    expect(() => new Verrou({ default: 'a', stores: { a: null as never } })).toThrow(E_INVALID_ARGUMENT)
  })
})
