import { median } from './stats.js'
import type { LockClient } from './subject.js'

/** Fewest and most cycles in one block: enough to time on a slow store, few enough to alternate often on a fast one. */
const MIN_CYCLES_PER_BLOCK = 5
const MAX_CYCLES_PER_BLOCK = 50

/** One side of a pair: a client and the keys it cycles on (never repeated). */
export interface PairSide {
  client: LockClient
  nextKey: () => string
}

export interface PairedRatio {
  /** Median over block pairs of (first side's block time / second side's): above 1, the first is slower. */
  ratio: number
  pairs: number
  cyclesPerBlock: number
}

/** How many cycles a block holds, for blocks of about `blockMs` at `cycleMs` per cycle. */
export function cyclesPerBlock(blockMs: number, cycleMs: number): number {
  const fit = cycleMs > 0 ? Math.round(blockMs / cycleMs) : MAX_CYCLES_PER_BLOCK
  return Math.min(MAX_CYCLES_PER_BLOCK, Math.max(MIN_CYCLES_PER_BLOCK, fit))
}

async function timeBlock(side: PairSide, cycles: number): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < cycles; i++) {
    const release = await side.client.lock(side.nextKey())
    await release()
  }
  return performance.now() - start
}

/**
 * The two sides in alternating blocks of the same number of cycles, the one that goes first swapping every
 * pair. Each pair's ratio compares two blocks run a few milliseconds apart, so a slow spell of the machine
 * (another process, a garbage collection, a checkpoint) lands on both sides of a pair or on few pairs,
 * and the median sets those few aside: this is the ratio the targets use.
 */
export async function runPairedBlocks(first: PairSide, second: PairSide, pairs: number, cycles: number): Promise<PairedRatio> {
  const ratios: number[] = []
  for (let pair = 0; pair < pairs; pair++) {
    let a: number
    let b: number
    if (pair % 2 === 0) {
      a = await timeBlock(first, cycles)
      b = await timeBlock(second, cycles)
    } else {
      b = await timeBlock(second, cycles)
      a = await timeBlock(first, cycles)
    }
    if (b > 0) ratios.push(a / b)
  }
  return { ratio: median(ratios), pairs: ratios.length, cyclesPerBlock: cycles }
}
