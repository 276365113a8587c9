import { describe, expect, expectTypeOf, test, vi } from 'vitest'
import { E_INVALID_ARGUMENT, E_LOCK_LOST } from './errors.js'
import { type LockContext, LockFactory } from './index.js'
import type { Logger } from './logger.js'
import { MemoryStore } from './memory_store.js'

/** A memory store that counts every call reaching it. */
function countedStore() {
  const store = new MemoryStore()
  let calls = 0
  for (const name of ['acquire', 'release', 'extend', 'forceRelease', 'isLocked'] as const) {
    const original = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>
    ;(store as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls++
      return original(...args)
    }
  }
  return { store, calls: () => calls }
}

describe('run validates every option before anything reaches the store', () => {
  test.each([
    { retryDelay: -1 },
    { retryDelay: 'soon' },
    { renewAtRemaining: 1.5 },
    { renewAtRemaining: Number.NaN },
    { renewAtRemaining: 0 },
    { renewAtRemaining: 1 },
    { extend: 'yes' },
  ])('autoExtend %j is E_INVALID_ARGUMENT and nothing is held', async (autoExtend) => {
    const { store, calls } = countedStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    await expect(lock.run(() => 1, { autoExtend: autoExtend as never })).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    await expect(lock.runImmediately(() => 1, { autoExtend: autoExtend as never })).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    expect(calls()).toBe(0)
  })

  test('a callback that is not a function, or a signal that is not one, is refused before acquiring', async () => {
    const { store, calls } = countedStore()
    const lock = new LockFactory(store).createLock('k', '10s')
    await expect(lock.run('nope' as never)).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    await expect(lock.run(() => 1, { signal: {} as never })).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    await expect(lock.run(() => 1, { autoExtend: 3 as never })).rejects.toBeInstanceOf(E_INVALID_ARGUMENT)
    expect(calls()).toBe(0)
  })

  test('a failure after the grant (here: a logger that throws) releases the grant', async () => {
    const store = new MemoryStore()
    const failing = new Error('logger down')
    const logger: Logger = {
      trace: () => {},
      debug: (_obj, msg) => {
        if (msg === 'verrou: lock acquired') throw failing
      },
      info: () => {},
      warn: () => {},
      error: () => {},
    }
    const lock = new LockFactory(store, { logger }).createLock('k', '10s')
    const callback = vi.fn()
    await expect(lock.run(callback)).rejects.toBe(failing)
    expect(callback).not.toHaveBeenCalled()
    expect(await store.isLocked('k')).toBe(false)
  })
})

describe('a lease lost inside run', () => {
  test('a loss only found by the final release is E_LOCK_LOST too, with the refusal as cause', async () => {
    const factory = new LockFactory(new MemoryStore())
    const lock = factory.createLock('job', '10s')
    const error = await lock
      .run(async () => {
        await factory.createLock('job').forceRelease()
      })
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(E_LOCK_LOST)
    expect((error as E_LOCK_LOST).code).toBe('E_LOCK_LOST')
    expect(((error as E_LOCK_LOST).cause as { code: string }).code).toBe('E_LOCK_NOT_OWNED')
  })
})

test('the run context has a number fencing token, always set', async () => {
  const lock = new LockFactory(new MemoryStore()).createLock('k')
  const [, token] = await lock.run(({ fencingToken }) => {
    expectTypeOf(fencingToken).toEqualTypeOf<number>()
    return fencingToken
  })
  expect(token).toBe(lock.fencingToken)
  expectTypeOf<LockContext['fencingToken']>().toEqualTypeOf<number>()
})
