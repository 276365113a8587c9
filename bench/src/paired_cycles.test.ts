import { describe, expect, it } from 'vitest'
import { newCycleTally } from './cycles.js'
import { cyclesPerBlock, runPairedBlocks } from './paired_cycles.js'
import { PLANS } from './plan.js'
import { measurePairs } from './run.js'
import type { LockClient, Role, Subject } from './subject.js'

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

describe('measurePairs', () => {
  /** A subject of the memory store whose client is `client`, with one measured cycle of `cycleMs`. */
  function entry(id: string, role: Role, client: LockClient, cycleMs = 0.5) {
    const subject: Subject = {
      id: `memory/${id}`,
      store: 'memory',
      label: id,
      role,
      cycles: true,
      contention: false,
      connect: async () => client,
    }
    const tally = newCycleTally()
    tally.latencies.push(cycleMs)
    let keys = 0
    return { subject, client, tally, nextKey: () => `${id}:${keys++}` }
  }
  const failing = (message: string): LockClient => ({
    async lock() {
      throw new Error(message)
    },
    async close() {},
  })
  const plan = { ...PLANS.smoke, cycles: { ...PLANS.smoke.cycles, pairs: 3, pairBlockMs: 5 } }

  it('pairs ours with the floor and the original, each block sized from the other side', async () => {
    const errors: string[] = []
    const results = await measurePairs(
      [
        // Ours spins 0.4 ms a cycle: 4x the floor's, a third of the original's (wide margins: three pairs only).
        entry('verrou-250ms', 'ours', busyClient(0.4)),
        entry('floor', 'floor', busyClient(0.1), 1),
        entry('verrou-v0', 'peer', busyClient(1.2), 0.25),
        entry('redlock', 'peer', busyClient(0.1)),
      ],
      plan,
      errors,
      () => {},
    )
    expect(errors).toEqual([])
    expect(results.map((row) => [row.against.id, row.pairs, row.cyclesPerBlock])).toEqual([
      ['memory/floor', 3, 5],
      ['memory/verrou-v0', 3, 20],
    ])
    expect(results[0]?.ratio).toBeGreaterThan(2)
    expect(results[1]?.ratio).toBeLessThan(0.6)
  })

  it('a floor that fails is an error of the run; an original that fails is only its row', async () => {
    const errors: string[] = []
    const results = await measurePairs(
      [
        entry('verrou-250ms', 'ours', busyClient(0.1)),
        entry('floor', 'floor', failing('floor down')),
        entry('verrou-v0', 'peer', failing('v0 down')),
      ],
      plan,
      errors,
      () => {},
    )
    expect(results.map((row) => [row.against.id, row.pairs, row.error])).toEqual([
      ['memory/floor', 0, 'Error: floor down'],
      ['memory/verrou-v0', 0, 'Error: v0 down'],
    ])
    expect(results.every((row) => Number.isNaN(row.ratio))).toBe(true)
    expect(errors).toEqual(['memory/verrou-250ms against memory/floor (paired cycles): Error: floor down'])
  })
})
