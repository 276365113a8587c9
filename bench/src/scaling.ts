import type { LockClient } from './subject.js'

/** What `callers` callers sharing one client did in one slice. */
export interface ScalingSlice {
  cycles: number
  elapsedMs: number
}

/**
 * `callers` loops at once on one shared client, each doing acquire + release on keys never used before,
 * until `sliceMs` has passed; cycles still in flight then are finished and counted, and so is their time.
 * `nextKey` must never repeat, so callers never meet on a key: what is measured is how the client, its
 * connection or pool and the server cope with concurrent work, not contention.
 */
export async function runScaling(
  client: LockClient,
  nextKey: () => string,
  callers: number,
  sliceMs: number,
): Promise<ScalingSlice> {
  const start = performance.now()
  const end = start + sliceMs
  let cycles = 0
  const caller = async () => {
    while (performance.now() < end) {
      const release = await client.lock(nextKey())
      await release()
      cycles++
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
  return { cycles, elapsedMs: performance.now() - start }
}

/** A few untimed cycles per caller: the pool opens its connections, statements get prepared on each. */
export async function warmUpCallers(client: LockClient, nextKey: () => string, callers: number, cycles: number): Promise<void> {
  const caller = async () => {
    for (let i = 0; i < cycles; i++) {
      const release = await client.lock(nextKey())
      await release()
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
}
