import type { ContentionSettings } from './contention.js'

/** How long everything runs. Rounds are interleaved across subjects: see `run.ts`. */
export interface Plan {
  name: 'full' | 'quick' | 'smoke'
  cycles: {
    rounds: number
    /** Per subject per round. */
    sliceMs: number
    /** Untimed cycles per subject before the first round. */
    warmupCycles: number
    /** Block pairs of ours against the floor (and the original), alternating, after the rounds. */
    pairs: number
    /** About how long one block runs: its cycle count comes from the other side's p50. */
    pairBlockMs: number
  }
  contention: ContentionSettings & { rounds: number }
  scaling: {
    /** Callers sharing one client, each a slice of its own per subject per round. */
    concurrencies: readonly number[]
    rounds: number
    sliceMs: number
    /** Untimed cycles per caller on the fresh client before each slice. */
    warmupCyclesPerCaller: number
    /** The one pool the callers share on PostgreSQL and MySQL. */
    poolSize: number
  }
  /** Lock over a store that answers at once, against the bare store calls: blocks of cycles, alternating. */
  lockCpu: { rounds: number; cyclesPerBlock: number }
}

const CONTENTION = { workers: 8, holdMs: 2 }
const SCALING = { concurrencies: [1, 8, 64], warmupCyclesPerCaller: 2, poolSize: 20 }

export const PLANS: Record<Plan['name'], Plan> = {
  // `pnpm bench`: what docs/benchmarks.md shows. About 16 minutes with every store (15.6 in the last full run).
  full: {
    name: 'full',
    cycles: { rounds: 6, sliceMs: 500, warmupCycles: 50, pairs: 60, pairBlockMs: 25 },
    contention: { ...CONTENTION, rounds: 3, durationMs: 4000 },
    scaling: { ...SCALING, rounds: 7, sliceMs: 300 },
    lockCpu: { rounds: 15, cyclesPerBlock: 20_000 },
  },
  // `pnpm bench --quick`: the same measurements, shorter; under two minutes.
  quick: {
    name: 'quick',
    cycles: { rounds: 2, sliceMs: 250, warmupCycles: 20, pairs: 20, pairBlockMs: 15 },
    contention: { ...CONTENTION, rounds: 1, durationMs: 1500 },
    scaling: { ...SCALING, rounds: 1, sliceMs: 200 },
    lockCpu: { rounds: 7, cyclesPerBlock: 10_000 },
  },
  // The smoke test: proves every subject runs and yields numbers, nothing more.
  smoke: {
    name: 'smoke',
    cycles: { rounds: 1, sliceMs: 100, warmupCycles: 5, pairs: 2, pairBlockMs: 5 },
    contention: { ...CONTENTION, rounds: 1, durationMs: 500 },
    scaling: { ...SCALING, rounds: 1, sliceMs: 50 },
    lockCpu: { rounds: 3, cyclesPerBlock: 1000 },
  },
}
