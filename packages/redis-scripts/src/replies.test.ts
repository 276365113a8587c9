import { describe, expect, test } from 'vitest'
import { parseAcquireReply } from './replies.js'

describe('acquire replies', () => {
  test('grants, refusals with and without a place', () => {
    expect(parseAcquireReply([1, 42], false)).toEqual({ acquired: true, fencingToken: 42 })
    expect(parseAcquireReply([1, 42], true)).toEqual({ acquired: true, fencingToken: 42 })
    expect(parseAcquireReply([0, 900], false)).toEqual({ acquired: false, expiresIn: 900 })
    expect(parseAcquireReply([0, -1], false)).toEqual({ acquired: false })
    expect(parseAcquireReply([0, 900, 3], true)).toEqual({ acquired: false, expiresIn: 900, position: 3 })
    // -2: the lock is free but a waiter goes first; no lease end to report.
    expect(parseAcquireReply([0, -2, 0], true)).toEqual({ acquired: false, position: 0 })
  })

  test('what is left of a lease near 2^53 ms, read rounded up by the client, is capped at the largest safe integer', () => {
    expect(parseAcquireReply([0, 2 ** 53], false)).toEqual({ acquired: false, expiresIn: Number.MAX_SAFE_INTEGER })
    expect(parseAcquireReply([0, 2 ** 53, 1], true)).toEqual({
      acquired: false,
      expiresIn: Number.MAX_SAFE_INTEGER,
      position: 1,
    })
  })

  test.each([
    [[0, 900], true, 'a refusal to a waiting call without a position'],
    [[0, 900, 1], false, 'a position nobody asked for'],
    [[0, 900, -1], true, 'a negative position'],
    [[0, 900, 1.5], true, 'a fractional position'],
    [[0, 900, '1'], true, 'a position as a string'],
    [[0, -3, 0], true, 'a PTTL Redis never gives'],
    [[1, 42, 0], true, 'a grant with a position'],
    [[1, 0], false, 'a zero token'],
    [null, false, 'nothing'],
  ] as [unknown, boolean, string][])('%j (waiting: %s) is refused: %s', (reply, waiting) => {
    expect(() => parseAcquireReply(reply, waiting)).toThrow(/unexpected reply to the acquire script/)
  })
})
