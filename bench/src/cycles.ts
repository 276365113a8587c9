import { Samples } from './stats.js'
import type { LockClient } from './subject.js'

/** What one subject's uncontended cycles add up to across rounds. */
export interface CycleTally {
  /** Milliseconds per acquire + release. */
  latencies: Samples
  elapsedMs: number
}

export const newCycleTally = (): CycleTally => ({ latencies: new Samples(), elapsedMs: 0 })

/**
 * Sequential acquire + release cycles, each on a key never used before, for `sliceMs`. `nextKey` must
 * never repeat. Every cycle is timed on its own, so a slow one shows in p99 rather than vanishing in a mean.
 */
export async function runCycles(client: LockClient, nextKey: () => string, sliceMs: number, tally: CycleTally): Promise<void> {
  const start = performance.now()
  const end = start + sliceMs
  let now = start
  while (now < end) {
    const release = await client.lock(nextKey())
    await release()
    const after = performance.now()
    tally.latencies.push(after - now)
    now = after
  }
  tally.elapsedMs += now - start
}

/** A few untimed cycles: connections opened, tables created, scripts loaded, code warmed up. */
export async function warmUp(client: LockClient, nextKey: () => string, cycles: number): Promise<void> {
  for (let i = 0; i < cycles; i++) {
    const release = await client.lock(nextKey())
    await release()
  }
}
