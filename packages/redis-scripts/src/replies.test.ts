import { describe, expect, test } from 'vitest'
import { parseAcquireReply, placeNumber } from './replies.js'

describe('acquire replies', () => {
  test('grants, refusals with and without a place', () => {
    expect(parseAcquireReply(42, false)).toEqual({ acquired: true, fencingToken: 42 })
    expect(parseAcquireReply(42, true)).toEqual({ acquired: true, fencingToken: 42 })
    expect(parseAcquireReply([900], false)).toEqual({ acquired: false, expiresIn: 900 })
    expect(parseAcquireReply([-1], false)).toEqual({ acquired: false })
    expect(parseAcquireReply([900, 3], true)).toEqual({ acquired: false, expiresIn: 900, position: 3 })
    // The mutex script numbers the place too; the number is read apart (placeNumber), not reported.
    expect(parseAcquireReply([900, 3, 1_764_000_000_000_000], true, true)).toEqual({
      acquired: false,
      expiresIn: 900,
      position: 3,
    })
    expect(placeNumber([900, 3, 1_764_000_000_000_000])).toBe(1_764_000_000_000_000)
    // -2: the lock is free but a waiter goes first; no lease end to report.
    expect(parseAcquireReply([-2, 0], true)).toEqual({ acquired: false, position: 0 })
  })

  test('what is left of a lease near 2^53 ms, read rounded up by the client, is capped at the largest safe integer', () => {
    expect(parseAcquireReply([2 ** 53], false)).toEqual({ acquired: false, expiresIn: Number.MAX_SAFE_INTEGER })
    expect(parseAcquireReply([2 ** 53, 1], true)).toEqual({
      acquired: false,
      expiresIn: Number.MAX_SAFE_INTEGER,
      position: 1,
    })
  })

  test.each([
    [[900], true, 'a refusal to a waiting call without a position'],
    [[900, 1], false, 'a position nobody asked for'],
    [[900, -1], true, 'a negative position'],
    [[900, 1.5], true, 'a fractional position'],
    [[900, '1'], true, 'a position as a string'],
    [[-3, 0], true, 'a PTTL Redis never gives'],
    [['900'], false, 'a PTTL as a string'],
    [[], false, 'an empty array'],
    [0, false, 'a zero token'],
    [-5, false, 'a negative token'],
    [1.5, false, 'a fractional token'],
    [2 ** 53, false, 'a token past the largest safe integer'],
    ['42', false, 'a token as a string'],
    [null, false, 'nothing'],
  ] as [unknown, boolean, string][])('%j (waiting: %s) is refused: %s', (reply, waiting) => {
    expect(() => parseAcquireReply(reply, waiting)).toThrow(/unexpected reply to the acquire script/)
  })

  test.each([
    [[900, 1], 'a refusal without the place number'],
    [[900, 1, 0], 'a place number of 0'],
    [[900, 1, '17'], 'a place number as a string'],
    [[900, 1, 2 ** 53], 'a place number past the largest safe integer'],
  ] as [unknown, string][])('%j from the mutex script is refused: %s', (reply) => {
    expect(() => parseAcquireReply(reply, true, true)).toThrow(/unexpected reply to the acquire script/)
  })
})
