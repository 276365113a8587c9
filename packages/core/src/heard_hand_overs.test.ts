import { describe, expect, test } from 'vitest'
import { HeardHandOvers } from './heard_hand_overs.js'

describe('HeardHandOvers', () => {
  test('a hand-over heard for the place a waiter holds is taken once, with the window left from its attempt', () => {
    const heard = new HeardHandOvers()
    heard.placed('k', 'w', 1_000, 2_000, 'p1')
    expect(heard.take('k', 'w', 1_100)).toBeUndefined()
    heard.heard('k', 'w', 'p1', 42)
    expect(heard.take('k', 'w', 1_500)).toEqual({ token: 42, lease: 1_500 })
    expect(heard.take('k', 'w', 1_500)).toBeUndefined()
    expect(heard.size).toBe(0)
  })

  test('one heard for another place, another owner or key, or with no place held, is ignored', () => {
    const heard = new HeardHandOvers()
    heard.heard('k', 'w', 'p1', 42)
    heard.placed('k', 'w', 1_000, 2_000, 'p2')
    heard.heard('k', 'w', 'p1', 42)
    heard.heard('k', 'other', 'p2', 42)
    // The key's length keeps ("k", "w") apart from ("", "kw").
    heard.heard('', 'kw', 'p2', 42)
    heard.heard('k', 'w', 'p2', Number.NaN)
    expect(heard.take('k', 'w', 1_100)).toBeUndefined()
  })

  test('a renewal of the same place keeps what was heard meanwhile; a new place, a withdrawal or forget drop it', () => {
    const heard = new HeardHandOvers()
    heard.placed('k', 'w', 1_000, 2_000, 'p1')
    heard.heard('k', 'w', 'p1', 42)
    heard.placed('k', 'w', 1_300, 2_000, 'p1')
    expect(heard.take('k', 'w', 1_400)).toEqual({ token: 42, lease: 1_900 })
    heard.placed('k', 'w', 2_000, 2_000, 'p1')
    heard.heard('k', 'w', 'p1', 43)
    heard.placed('k', 'w', 2_100, 2_000, 'p2')
    expect(heard.take('k', 'w', 2_200)).toBeUndefined()
    heard.heard('k', 'w', 'p2', 44)
    heard.withdrawn('k', 'w')
    expect(heard.take('k', 'w', 2_200)).toBeUndefined()
    heard.heard('k', 'w', 'p2', 45)
    heard.forget('k', 'w')
    expect(heard.take('k', 'w', 2_200)).toBeUndefined()
  })

  test('once the window may be over it is not answered: only the store can tell', () => {
    const heard = new HeardHandOvers()
    heard.placed('k', 'w', 1_000, 2_000, 'p1')
    heard.heard('k', 'w', 'p1', 42)
    expect(heard.take('k', 'w', 3_000)).toBeUndefined()
    expect(heard.size).toBe(0)
  })
})
