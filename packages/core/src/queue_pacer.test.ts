import { describe, expect, test } from 'vitest'
import { QUEUE_HEAD_POLL_MS, QueuePacer } from './queue_pacer.js'

/** Feeds the pacer refusals at the times it asked for; returns the pauses. `positionAt(t)` is the queue. */
function follow(positionAt: (at: number) => number, until: number, roundTrip = 0.5): { at: number; pause: number }[] {
  const pacer = new QueuePacer()
  const seen: { at: number; pause: number }[] = []
  for (let at = 0; at < until; ) {
    const pause = pacer.next(positionAt(at), at, roundTrip)
    seen.push({ at, pause })
    at += pause + roundTrip
  }
  return seen
}

describe('QueuePacer: when a waiter on a store that cannot announce polls', () => {
  test('with the pace unknown, the head polls at a quarter of the head poll and others look again after one head poll', () => {
    expect(new QueuePacer().next(0, 0, 0.5)).toBe(QUEUE_HEAD_POLL_MS / 4)
    expect(new QueuePacer().next(5, 0, 0.5)).toBe(QUEUE_HEAD_POLL_MS)
  })

  test('it learns the pace from its own position dropping, and the head and the next in line poll four times per hand-over', () => {
    const pacer = new QueuePacer()
    pacer.next(6, 0, 0.5)
    // Four places gained in 20 ms: 5 ms per hand-over.
    expect(pacer.next(2, 20, 0.5)).toBe(2.5)
    expect(pacer.next(1, 25, 0.5)).toBe(1.25)
    expect(pacer.next(0, 30, 0.5)).toBe(1.25)
  })

  test('a queue moving every 4 ms: the head catches each release within a quarter of a hand-over', () => {
    // One hand-over every 4 ms; the waiter joined behind 7 others at t = 0.
    const pauses = follow((at) => Math.max(0, 7 - Math.floor(at / 4)), 40)
    // (Nobody releases here once it leads: only its first hand-over at the head counts.)
    const atHead = pauses.filter((poll) => poll.at >= 28 && poll.at < 32)
    expect(atHead.length).toBeGreaterThan(1)
    for (const poll of atHead) expect(poll.pause).toBeLessThanOrEqual(1.5)
    // Behind, it polls about once per place gained, not once per millisecond.
    expect(pauses.filter((poll) => poll.at < 28).length).toBeLessThanOrEqual(12)
  })

  test('a holder that keeps the lock for long costs one poll per head poll, as a plain poller would', () => {
    const pacer = new QueuePacer()
    pacer.next(3, 0, 0.5)
    pacer.next(0, 12, 0.5) // 4 ms per hand-over: the head starts polling every millisecond...
    let polls = 0
    let pause = 0
    for (let at = 12; at < 1012; at += pause) {
      pause = pacer.next(0, at, 0.5)
      polls++
    }
    // ...and once the holder keeps it longer than a hand-over, backs off to the head poll.
    expect(pause).toBe(QUEUE_HEAD_POLL_MS)
    expect(polls).toBeLessThanOrEqual(1000 / QUEUE_HEAD_POLL_MS + 10)
  })

  test('waiters further back back off to one poll per head poll per place, as before', () => {
    const pacer = new QueuePacer()
    let pause = 0
    for (let at = 0; at < 2000; at += pause) pause = pacer.next(3, at, 0.5)
    expect(pause).toBe(QUEUE_HEAD_POLL_MS * 4)
  })

  test('never more often than one attempt takes, never less often than the head poll per place', () => {
    const pacer = new QueuePacer()
    pacer.next(4, 0, 3)
    // A fast queue (1 ms per hand-over) but 3 ms round trips: the round trip bounds the polling.
    expect(pacer.next(0, 4, 3)).toBe(3)
    const slow = new QueuePacer()
    slow.next(2, 0, 0.5)
    // A slow queue (1 s per hand-over): still at most 20 ms per place from the head.
    expect(slow.next(1, 1000, 0.5)).toBe(2 * QUEUE_HEAD_POLL_MS)
  })
})
