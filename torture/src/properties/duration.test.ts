import { errors, LockFactory, MemoryStore } from '@verrou/core'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { tally } from '../tally.js'
import { countingStore } from './counting_store.js'

const factory = new LockFactory(new MemoryStore())
const ttlOf = (value: unknown) => factory.createLock('duration', value as number).ttl

/** Milliseconds per unit, under every spelling the parser documents. */
const UNITS: Array<[spellings: string[], factor: bigint]> = [
  [['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'], 1n],
  [['s', 'sec', 'secs', 'second', 'seconds'], 1000n],
  [['m', 'min', 'mins', 'minute', 'minutes'], 60_000n],
  [['h', 'hr', 'hrs', 'hour', 'hours'], 3_600_000n],
  [['d', 'day', 'days'], 86_400_000n],
]
const unit = fc.constantFrom(...UNITS.flatMap(([spellings, factor]) => spellings.map((spelling) => ({ spelling, factor }))))

/** The exact lease a decimal duration asks for, rounded up to whole ms, computed without floating point. */
function exactCeil(integerPart: number, fraction: string, factor: bigint): bigint {
  const scale = 10n ** BigInt(fraction.length)
  const numerator = (BigInt(integerPart) * scale + BigInt(fraction === '' ? 0 : fraction)) * factor
  return (numerator + scale - 1n) / scale
}

function printable(value: unknown): boolean {
  try {
    String(value)
    return true
  } catch {
    return false
  }
}

function expectInvalid(run: () => unknown): void {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
}

describe('duration parsing, through the public API (createLock ttl)', () => {
  test('a positive whole number of ms is the ttl, unchanged', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (ms) => {
        expect(ttlOf(ms)).toBe(ms)
      }),
      { numRuns: 500 },
    )
    tally('inputsTried', 'core', 500, 'whole-ms durations')
  })

  test('a fractional number of ms is rounded up: the lease is never shorter than asked', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e12, noNaN: true }), (ms) => {
        const ttl = ttlOf(ms)!
        expect(ttl).toBe(Math.ceil(ms))
        expect(ttl).toBeGreaterThanOrEqual(ms)
      }),
      { numRuns: 500 },
    )
    tally('inputsTried', 'core', 500, 'fractional durations')
  })

  test('zero, negative, NaN and infinite numbers are E_INVALID_ARGUMENT', () => {
    const bad = fc.oneof(
      fc.double({ max: 0, noNaN: true }),
      fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    )
    fc.assert(
      fc.property(bad, (value) => expectInvalid(() => ttlOf(value))),
      { numRuns: 300 },
    )
    tally('inputsTried', 'core', 300, 'invalid numeric durations')
  })

  test('"<n><unit>" strings, any documented spelling, case and spacing, give n times the unit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        unit,
        fc.constantFrom('', ' ', '  '),
        fc.boolean(),
        fc.constantFrom('', ' ', '\t'),
        (n, { spelling, factor }, gap, upper, pad) => {
          const text = `${pad}${n}${gap}${upper ? spelling.toUpperCase() : spelling}${pad}`
          expect(ttlOf(text), text).toBe(Number(BigInt(n) * factor))
        },
      ),
      { numRuns: 1000 },
    )
    tally('inputsTried', 'core', 1000, 'unit duration strings')
  })

  test('decimal strings are never shorter than asked, and at most 1 ms longer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.stringMatching(/^[0-9]{1,4}$/),
        unit,
        (integerPart, fraction, { spelling, factor }) => {
          const exact = exactCeil(integerPart, fraction, factor)
          fc.pre(exact > 0n)
          const text = `${integerPart}.${fraction}${spelling}`
          const ttl = BigInt(ttlOf(text)!)
          expect(ttl >= exact, `${text}: ${ttl} < ${exact}`).toBe(true)
          expect(ttl - exact <= 1n, `${text}: ${ttl} vs ${exact}`).toBe(true)
        },
      ),
      { numRuns: 1000 },
    )
    tally('inputsTried', 'core', 1000, 'decimal duration strings')
  })

  // Found by this suite: the float error in 1.1 * 1000 = 1100.0000000000002 used to become an extra ms.
  test('decimal strings that are a whole number of ms give exactly that many ms ("1.1s" is 1100)', () => {
    for (const [text, ms] of [
      ['1.1s', 1100],
      ['0.57s', 570],
      ['2.3m', 138_000],
      ['1.1h', 3_960_000],
    ] as const) {
      expect(ttlOf(text), text).toBe(ms)
    }
  })

  test('any string is either a positive whole ttl or E_INVALID_ARGUMENT, nothing else', () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.stringMatching(/^-?[0-9.e+]{0,8} ?[a-zA-Z]{0,12}$/),
      fc.constantFrom('', ' ', '.', '-', '1e3', '0x10', 'Infinity', '1..2s', '1s2', '5 mins ago', '٣s', '１s'),
    )
    fc.assert(
      fc.property(text, (value) => {
        let ttl: number | null | undefined
        try {
          ttl = ttlOf(value)
        } catch (error) {
          expect(error).toBeInstanceOf(errors.E_INVALID_ARGUMENT)
          return
        }
        expect(Number.isSafeInteger(ttl) && ttl! > 0, `${JSON.stringify(value)} -> ${ttl}`).toBe(true)
      }),
      { numRuns: 2000 },
    )
    tally('inputsTried', 'core', 2000, 'arbitrary duration strings')
  })

  test('values of any other type are E_INVALID_ARGUMENT (null means no expiry)', () => {
    expect(ttlOf(null)).toBeNull()
    fc.assert(
      fc.property(
        // Values String() cannot print have their own (failing) test below.
        fc
          .anything()
          .filter((value) => typeof value !== 'number' && typeof value !== 'string' && value !== null && value !== undefined)
          .filter(printable),
        (value) => expectInvalid(() => ttlOf(value)),
      ),
      { numRuns: 300 },
    )
    tally('inputsTried', 'core', 300, 'non-duration values')
  })

  // Found by this suite: error messages built with String(value) used to throw a TypeError for such objects.
  test('values String() cannot print are E_INVALID_ARGUMENT too, not a TypeError', async () => {
    const unprintable = [Object.create(null), { toString: 0 }, { [Symbol.toPrimitive]: () => ({}) }]
    for (const value of unprintable) {
      expectInvalid(() => ttlOf(value))
      expectInvalid(() => factory.createLock(value))
      expectInvalid(() => new LockFactory(new MemoryStore(), { operationTimeout: value }))
      await expect(factory.createLock('k').acquire({ retry: { attempts: value } })).rejects.toBeInstanceOf(
        errors.E_INVALID_ARGUMENT,
      )
    }
  })

  test('an invalid extend ttl or factory option is rejected before anything reaches the store', async () => {
    const { store, calls } = countingStore()
    const counted = new LockFactory(store)
    const lock = counted.createLock('extend-check', '1m')
    expect(await lock.acquireImmediately()).toBe(true)
    const before = calls()
    for (const bad of [0, -1, Number.NaN, '', 'soon', '-5s', Number.POSITIVE_INFINITY]) {
      await expect(lock.extend(bad)).rejects.toBeInstanceOf(errors.E_INVALID_ARGUMENT)
      expectInvalid(() => counted.createLock('x', bad))
    }
    expect(calls()).toBe(before)
    for (const bad of [0, -1, 'later', Number.NaN]) {
      expectInvalid(() => new LockFactory(store, { operationTimeout: bad }))
      expectInvalid(() => new LockFactory(store, { defaultTtl: bad }))
    }
    expect(() => new LockFactory(store, { operationTimeout: Number.POSITIVE_INFINITY })).not.toThrow()
    tally('inputsTried', 'core', 15, 'invalid extend and factory options')
  })
})
