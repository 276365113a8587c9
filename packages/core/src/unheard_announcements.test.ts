import { describe, expect, test } from 'vitest'
import { UnheardAnnouncements } from './unheard_announcements.js'

describe('UnheardAnnouncements', () => {
  test('hands what a key missed to its next listener once, oldest first, and forgets it after a few seconds', () => {
    const unheard = new UnheardAnnouncements()
    unheard.keep('a', 'w1', 1_000)
    unheard.keep('a', undefined, 1_010)
    unheard.keep('b', 'w2', 1_000)
    expect(unheard.take('a', 1_020)).toEqual(['w1', undefined])
    expect(unheard.take('a', 1_030)).toEqual([])
    // Five seconds on, an announcement is too old to mean anything to a waiter subscribing now.
    expect(unheard.take('b', 6_000)).toEqual([])
  })

  test('keeps a bounded number per key and of keys', () => {
    const unheard = new UnheardAnnouncements()
    for (let i = 0; i < 20; i++) unheard.keep('a', `w${i}`, 1_000 + i)
    expect(unheard.take('a', 1_100)).toEqual(Array.from({ length: 8 }, (_, i) => `w${12 + i}`))
    for (let i = 0; i < 1_000; i++) unheard.keep(`old${i}`, 'w', 1_000)
    // Full of stale keys: they make room for a new one.
    unheard.keep('fresh', 'w', 7_000)
    expect(unheard.take('old0', 7_000)).toEqual([])
    expect(unheard.take('fresh', 7_000)).toEqual(['w'])
    for (let i = 0; i < 1_000; i++) unheard.keep(`new${i}`, 'w', 8_000)
    // Full of fresh keys: the store starts over rather than grow.
    unheard.keep('last', 'w', 8_001)
    expect(unheard.take('new0', 8_002)).toEqual([])
    expect(unheard.take('last', 8_002)).toEqual(['w'])
  })
})
