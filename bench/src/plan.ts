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
  }
  contention: ContentionSettings & { rounds: number }
}

const CONTENTION = { workers: 8, holdMs: 2 }

export const PLANS: Record<Plan['name'], Plan> = {
  // `pnpm bench`: what docs/benchmarks.md shows. Under ten minutes with every store.
  full: {
    name: 'full',
    cycles: { rounds: 6, sliceMs: 500, warmupCycles: 50 },
    contention: { ...CONTENTION, rounds: 3, durationMs: 4000 },
  },
  // `pnpm bench --quick`: the same measurements, shorter; under two minutes.
  quick: {
    name: 'quick',
    cycles: { rounds: 2, sliceMs: 250, warmupCycles: 20 },
    contention: { ...CONTENTION, rounds: 1, durationMs: 1500 },
  },
  // The smoke test: proves every subject runs and yields numbers, nothing more.
  smoke: {
    name: 'smoke',
    cycles: { rounds: 1, sliceMs: 100, warmupCycles: 5 },
    contention: { ...CONTENTION, rounds: 1, durationMs: 500 },
  },
}
