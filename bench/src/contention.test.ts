import { describe, expect, test } from 'vitest'
import { type Hold, runHolds, summarise } from './contention.js'
import { newCounters } from './subject.js'

const hold = (worker: number, acquiredAt: number, releasingAt: number, extra: Partial<Hold> = {}): Hold => ({
  worker,
  askedAt: acquiredAt - 1,
  acquiredAt,
  releasingAt,
  releasedAt: releasingAt + 1,
  ...extra,
})

describe('contention: where a hand-off goes', () => {
  test('each hand-off to a client that times its attempts splits into release, wait for the attempt, and the attempt', () => {
    const holds = [
      hold(0, 0, 10), // released 10 -> 11
      hold(1, 13, 20, { attemptSentAt: 11.5 }), // sent 0.5 after the release answered, granted 1.5 later
      hold(2, 22.5, 30, { attemptSentAt: 20.5 }), // sent before the release (20 -> 21) had answered
      hold(0, 35, 40), // no attempt time: counted as a hand-off, not split
    ]
    const round = summarise(holds, 100, 3, newCounters())
    expect(round.handoffs).toEqual([3, 2.5, 5])
    expect(round.handoffSplits).toEqual([
      { release: 1, toAttempt: 0.5, attempt: 1.5 },
      { release: 1, toAttempt: -0.5, attempt: 2 },
    ])
    expect(round.overlaps).toBe(0)
  })

  test('when two holders released before an acquisition, the split starts from the later release', () => {
    // Worker 1 acquired while worker 0 still held (an overlap): both are active, and both released before worker 2.
    const holds = [
      hold(0, 0, 10, { releasedAt: 12 }),
      hold(1, 1, 15, { releasedAt: 15.5 }),
      hold(2, 17, 20, { attemptSentAt: 16 }),
    ]
    const round = summarise(holds, 100, 3, newCounters())
    expect(round.overlaps).toBe(1)
    expect(round.handoffs).toEqual([2])
    expect(round.handoffSplits).toEqual([{ release: 0.5, toAttempt: 0.5, attempt: 1 }])
  })

  test("runHolds puts the client's attempt time on the holds' clock", async () => {
    const offset = 5_000
    let sentAt: number | undefined
    const client = {
      async lock() {
        sentAt = performance.now()
        await new Promise((resolve) => setTimeout(resolve, 5))
        return async () => {}
      },
      lastAttemptSentAt: () => sentAt,
      async close() {},
    }
    const now = () => performance.now() + offset
    const holds = await runHolds(client, 'k', 0, 1, now() + 20, now)
    expect(holds.length).toBeGreaterThan(0)
    for (const each of holds) {
      // Sent at the start of lock(), about 5 ms before it resolved, on the offset clock.
      expect(each.attemptSentAt).toBeDefined()
      expect(each.acquiredAt - each.attemptSentAt!).toBeGreaterThanOrEqual(4)
      expect(each.acquiredAt - each.attemptSentAt!).toBeLessThan(1_000)
      expect(each.attemptSentAt! - each.askedAt).toBeGreaterThanOrEqual(-0.1)
      expect(each.releasedAt).toBeGreaterThanOrEqual(each.releasingAt)
    }
  })
})
