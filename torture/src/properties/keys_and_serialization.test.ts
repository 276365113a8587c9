import { errors, LockFactory, MemoryStore } from '@verrou/core'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { tally } from '../tally.js'
import { countingStore } from './counting_store.js'

/** One UTF-16 unit or code point: any code point ('binary' never yields a lone surrogate), or a lone surrogate half. */
const codeUnit = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) },
)
/** Any JS string, lone surrogates included: valid keys all. */
const anyString = fc.oneof(
  fc.string({ unit: codeUnit, minLength: 1 }),
  fc.string({ minLength: 1 }),
  fc.string({ unit: 'grapheme', minLength: 1 }),
)
const isWellFormed = (text: string) => !/[\ud800-\udfff]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))
/** Keys and owners must be well-formed Unicode (core refuses lone surrogates): any other non-empty string. */
const anyKey = anyString.filter(isWellFormed)
const anyOwner = anyKey

function thrown(run: () => unknown): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  return undefined
}

describe('key handling (memory store, public API)', () => {
  test('empty and non-string keys and owners are E_INVALID_ARGUMENT, before anything reaches the store', () => {
    const { store, calls } = countingStore()
    const factory = new LockFactory(store)
    const bad: unknown[] = ['', null, undefined, 0, 1, true, {}, [], Symbol('k'), 10n, () => 'k']
    for (const key of bad) {
      expect(
        thrown(() => factory.createLock(key as string)),
        String(typeof key),
      ).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    }
    for (const owner of ['', 0, {}, false, '\ud800', 'a\udc00b', '\udbff\ud800']) {
      expect(thrown(() => factory.createLock('k', '1s', { owner: owner as string }))).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    }
    expect(calls()).toBe(0)
    tally('inputsTried', 'core', bad.length + 7, 'invalid keys and owners')
  })

  test('strings with a lone surrogate are refused as keys and owners, with E_INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(
        anyString.filter((text) => !isWellFormed(text)),
        (text) => {
          const factory = new LockFactory(new MemoryStore())
          expect(thrown(() => factory.createLock(text))).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
          expect(thrown(() => factory.createLock('k', '1m', { owner: text }))).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
        },
      ),
      { numRuns: 200 },
    )
    tally('inputsTried', 'core', 200 * 2, 'ill-formed keys and owners')
  })

  test('any other non-empty string is a key of its own: distinct keys never share a lock', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(anyKey, { minLength: 2, maxLength: 8 }), async (keys) => {
        const factory = new LockFactory(new MemoryStore())
        const locks = keys.map((key) => factory.createLock(key, '1m'))
        for (const lock of locks) expect(await lock.acquireImmediately()).toBe(true)
        for (const key of keys) expect(await factory.createLock(key).acquireImmediately()).toBe(false)
        for (const lock of locks) await lock.release()
        for (const lock of locks) expect(await lock.isLocked()).toBe(false)
      }),
      { numRuns: 300 },
    )
    tally('inputsTried', 'memory', 300 * 5, 'generated key sets')
  })
})

describe('serialized locks', () => {
  const factory = new LockFactory(new MemoryStore())

  // Leases of at least 10 s: a 1 ms lease can rightly end before the restored lock releases it (a CI run
  // on a loaded machine hit exactly that). Very long leases have their own test (src/hostile).
  test('serialize then restore gives the same lock, whatever its key, owner, ttl and token', async () => {
    await fc.assert(
      fc.asyncProperty(
        anyKey,
        anyOwner,
        fc.oneof(fc.integer({ min: 10_000, max: 2 ** 40 }), fc.constant(null)),
        async (key, owner, ttl) => {
          const lock = factory.createLock(key, ttl, { owner })
          expect(await lock.acquireImmediately()).toBe(true)
          const restored = factory.restoreLock(lock.serialize())
          expect(restored.key).toBe(key)
          expect(restored.getOwner()).toBe(owner)
          expect(restored.ttl).toBe(ttl)
          expect(restored.fencingToken).toBe(lock.fencingToken)
          await restored.release()
          expect(await lock.isLocked()).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
    tally('inputsTried', 'core', 300, 'serialization round trips')
  })

  test('any string given to restoreLock is a lock or E_INVALID_ARGUMENT, nothing else', () => {
    const valid = JSON.parse(factory.createLock('k', '1s', { owner: 'o' }).serialize()) as Record<string, unknown>
    // Valid documents with one field replaced by anything at all, plus arbitrary text and JSON.
    const mutated = fc
      .tuple(fc.constantFrom(...Object.keys(valid), '__proto__', 'constructor', 'extra'), fc.jsonValue())
      .map(([field, value]) => JSON.stringify({ ...valid, [field]: value }))
    const input = fc.oneof(mutated, fc.json(), fc.string(), fc.string({ unit: 'binary' }))
    fc.assert(
      fc.property(input, (text) => {
        let lock: ReturnType<typeof factory.restoreLock>
        try {
          lock = factory.restoreLock(text)
        } catch (error) {
          expect(error).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
          return
        }
        expect(typeof lock.key === 'string' && lock.key.length > 0).toBe(true)
        expect(lock.getOwner().length).toBeGreaterThan(0)
        expect(lock.ttl === null || (Number.isSafeInteger(lock.ttl) && lock.ttl > 0)).toBe(true)
      }),
      { numRuns: 2000 },
    )
    for (const value of [undefined, null, 42, {}, [], Buffer.from('{}')]) {
      expect(thrown(() => factory.restoreLock(value as unknown as string))).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
    }
    tally('inputsTried', 'core', 2006, 'malformed serialized locks')
  })
})
