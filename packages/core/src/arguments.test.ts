// Argument checks that never reach a store: moved here from the conformance suite, where every driver
// re-ran them although no driver code takes part. A store that counts its calls proves nothing reached it.
import { describe, expect, test } from 'vitest'
import { E_INVALID_ARGUMENT } from './errors.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'
import type { LockStore } from './store.js'

function countedFactory(): { factory: LockFactory; calls: () => number } {
  const memory = new MemoryStore()
  let calls = 0
  const count =
    <A extends unknown[], R>(call: (...args: A) => R) =>
    (...args: A): R => {
      calls++
      return call(...args)
    }
  const store: LockStore = {
    acquire: count((key: string, owner: string, ttl: number | null) => memory.acquire(key, owner, ttl)),
    release: count((key: string, owner: string) => memory.release(key, owner)),
    extend: count((key: string, owner: string, ttl: number | null) => memory.extend(key, owner, ttl)),
    forceRelease: count((key: string) => memory.forceRelease(key)),
    isLocked: count((key: string) => memory.isLocked(key)),
  }
  return { factory: new LockFactory(store), calls: () => calls }
}

describe('arguments are checked before anything reaches the store', () => {
  test('bad keys, ttls and owners', () => {
    const { factory, calls } = countedFactory()
    for (const badKey of ['', undefined, null, 42, 'half \uD800 a pair', '\uDC00', Object.create(null)]) {
      expect(() => factory.createLock(badKey as string), typeof badKey).toThrow(E_INVALID_ARGUMENT)
    }
    for (const badTtl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 'soon', '', '-5s', '0s']) {
      expect(() => factory.createLock('key', badTtl as number), `ttl ${String(badTtl)}`).toThrow(E_INVALID_ARGUMENT)
    }
    expect(() => factory.createLock('key', '10s', { owner: '' })).toThrow(E_INVALID_ARGUMENT)
    expect(() => factory.createLock('key', '10s', { owner: 'half \uD800 a pair' })).toThrow(E_INVALID_ARGUMENT)
    expect(calls()).toBe(0)
  })

  test('bad retry options and extend durations', async () => {
    const { factory, calls } = countedFactory()
    const lock = factory.createLock('key', '10s')
    const badRetries = [
      { attempts: 0 },
      { attempts: -1 },
      { attempts: 1.5 },
      { attempts: Number.NaN },
      { timeout: -1 },
      { timeout: Number.NaN },
      { timeout: 'later' },
      { delay: -10 },
      { delay: Number.NaN },
    ]
    for (const retry of badRetries) {
      await expect(lock.acquire({ retry: retry as never }), JSON.stringify(retry)).rejects.toThrow(E_INVALID_ARGUMENT)
      await expect(lock.run(() => 1, { retry: retry as never })).rejects.toThrow(E_INVALID_ARGUMENT)
    }
    for (const ttl of [0, -1, Number.NaN, 'nope']) {
      await expect(lock.extend(ttl as number)).rejects.toThrow(E_INVALID_ARGUMENT)
    }
    expect(calls()).toBe(0)
  })

  test('malformed serialized locks', () => {
    const { factory, calls } = countedFactory()
    const valid = JSON.parse(factory.createLock('key', '10s').serialize()) as Record<string, unknown>
    const inputs: unknown[] = [
      '',
      'not json',
      '[]',
      'null',
      '42',
      '{}',
      JSON.stringify({ ...valid, v: 99 }),
      JSON.stringify({ ...valid, key: '' }),
      JSON.stringify({ ...valid, key: 7 }),
      JSON.stringify({ ...valid, owner: '' }),
      JSON.stringify({ ...valid, ttl: -5 }),
      JSON.stringify({ ...valid, ttl: 'soon' }),
      JSON.stringify({ ...valid, fencingToken: 1.5 }),
      JSON.stringify({ ...valid, held: 'yes' }),
      undefined,
      42,
    ]
    for (const input of inputs) {
      expect(() => factory.restoreLock(input as string), `input ${String(input)}`).toThrow(E_INVALID_ARGUMENT)
    }
    expect(calls()).toBe(0)
  })
})
