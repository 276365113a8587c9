import { describe, expect, it } from 'vitest'
import { cyclesPerBlock, runPairedBlocks } from './paired_cycles.js'
import type { LockClient } from './subject.js'

/** A client whose cycle takes `ms` of busy time, the first `slowCycles` cycles of it `slowMs` instead. */
function busyClient(ms: number, { slowCycles = 0, slowMs = ms } = {}): LockClient & { cycles: number } {
  const spin = (duration: number) => {
    const end = performance.now() + duration
    while (performance.now() < end) {}
  }
  const client = {
    cycles: 0,
    async lock() {
      spin(client.cycles < slowCycles ? slowMs : ms)
      client.cycles++
      return async () => {}
    },
    async close() {},
  }
  return client
}

describe('paired cycle blocks', () => {
  it("sizes a block from the other side's cycle time, between 5 and 50 cycles", () => {
    expect(cyclesPerBlock(25, 1)).toBe(25)
    expect(cyclesPerBlock(25, 0.1)).toBe(50)
    expect(cyclesPerBlock(25, 7)).toBe(5)
    expect(cyclesPerBlock(25, 0)).toBe(50)
  })

  it('gives the ratio of cycle times, and a slow spell on a few pairs does not move the median', async () => {
    let keys = 0
    const nextKey = () => `k${keys++}`
    // Ours takes twice as long per cycle; the floor's first 10 cycles (2 of 11 blocks) are ten times slower.
    const ours = busyClient(0.4)
    const floor = busyClient(0.2, { slowCycles: 10, slowMs: 2 })
    const paired = await runPairedBlocks({ client: ours, nextKey }, { client: floor, nextKey }, 11, 5)
    expect(paired.pairs).toBe(11)
    expect(paired.cyclesPerBlock).toBe(5)
    expect(ours.cycles).toBe(55)
    expect(floor.cycles).toBe(55)
    expect(paired.ratio).toBeGreaterThan(1.6)
    expect(paired.ratio).toBeLessThan(2.5)
  })
})
