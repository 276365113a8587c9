import { describe, expect, test } from 'vitest'
import { toMilliseconds, toTtl } from './duration.js'
import { E_INVALID_ARGUMENT } from './errors.js'
import { LockFactory } from './lock_factory.js'
import { MemoryStore } from './memory_store.js'

describe('durations', () => {
  test.each([
    [250, 250],
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1.5h', 5_400_000],
    ['2 days', 172_800_000],
    [' 10s ', 10_000],
    [1.2, 2],
    ['1.1s', 1100],
    ['0.57s', 570],
    ['2.3m', 138_000],
  ])('%j is %d ms', (input, expected) => {
    expect(toMilliseconds(input, 'ttl')).toBe(expected)
  })

  test.each([0, -1, '-5s', Number.NaN, Number.POSITIVE_INFINITY, '', 'soon', '10 parsecs', '0s', {}, null, undefined])(
    '%j is rejected as a ttl',
    (input) => {
      expect(() => toMilliseconds(input as never, 'ttl')).toThrow(E_INVALID_ARGUMENT)
    },
  )

  test('zero and Infinity only where allowed', () => {
    expect(toMilliseconds(0, 'timeout', { allowZero: true })).toBe(0)
    expect(toMilliseconds(Number.POSITIVE_INFINITY, 'timeout', { allowInfinity: true })).toBe(Number.POSITIVE_INFINITY)
    expect(() => toMilliseconds(Number.POSITIVE_INFINITY, 'ttl')).toThrow(/finite/)
  })

  test('objects String() cannot print are still a typed error', () => {
    expect(() => toMilliseconds(Object.create(null), 'ttl')).toThrow(E_INVALID_ARGUMENT)
    expect(() => toMilliseconds({ toString: 0 } as never, 'ttl')).toThrow(E_INVALID_ARGUMENT)
  })

  test('null ttl means no expiry', () => {
    expect(toTtl(null)).toBeNull()
    expect(toTtl('1s')).toBe(1000)
  })

  test('the error says what was wrong', () => {
    expect(() => toMilliseconds('soon', 'retry.delay')).toThrow(
      'retry.delay must be a number of milliseconds or a duration such as "10s", got "soon"',
    )
  })
})

test('fractions round up, never down', () => {
  expect(toMilliseconds('1.0004ms', 'ttl')).toBe(2)
  expect(toMilliseconds(0.0001, 'ttl')).toBe(1)
})

describe('the largest accepted duration', () => {
  test('durations up to Number.MAX_SAFE_INTEGER ms are accepted; beyond, E_INVALID_ARGUMENT', () => {
    expect(toMilliseconds(Number.MAX_SAFE_INTEGER, 'ttl')).toBe(Number.MAX_SAFE_INTEGER)
    expect(() => toMilliseconds(1e20, 'ttl')).toThrow(E_INVALID_ARGUMENT)
    expect(() => toMilliseconds(Number.MAX_SAFE_INTEGER + 2, 'ttl')).toThrow(/at most/)
    expect(() => toMilliseconds('300000000 years', 'ttl')).toThrow(E_INVALID_ARGUMENT)
  })

  test('whatever createLock accepts round-trips through serialize and restoreLock', async () => {
    const factory = new LockFactory(new MemoryStore())
    expect(() => factory.createLock('k', 1e20)).toThrow(E_INVALID_ARGUMENT)
    for (const ttl of [1_000, '50d', 2 ** 31, Number.MAX_SAFE_INTEGER, null]) {
      const lock = factory.createLock(`k:${ttl}`, ttl)
      expect(factory.restoreLock(lock.serialize()).ttl).toBe(lock.ttl)
      await lock.acquire()
      const restored = factory.restoreLock(lock.serialize())
      expect(restored.ttl).toBe(lock.ttl)
      expect(restored.isExpired()).toBe(false)
      await restored.release()
    }
  })
})
