import type { LockStore } from '@verrou/core'

export interface ManyKeysRun {
  /** Wall-clock ms (Date.now) at which each key's release was answered, in the order keys finished. */
  releasedAt: number[]
  /** Fencing token of every `sampleEvery`-th key, by key. */
  sampledTokens: Map<string, number>
  elapsedMs: number
}

/**
 * Locks `count` distinct keys once each (acquire, then release), `concurrency` at a time, as an application
 * locking `invoice:${id}` would. Every acquire must be granted and every release must succeed: the keys
 * are fresh, so anything else is a defect.
 */
export async function lockEachKeyOnce(
  store: LockStore,
  options: { keyOf: (index: number) => string; count: number; concurrency: number; sampleEvery: number },
): Promise<ManyKeysRun> {
  const { keyOf, count, concurrency, sampleEvery } = options
  const releasedAt: number[] = []
  const sampledTokens = new Map<string, number>()
  let next = 0
  const started = performance.now()
  const worker = async () => {
    while (next < count) {
      const index = next++
      const key = keyOf(index)
      const result = await store.acquire(key, `owner-${index}`, 60_000)
      if (!result.acquired) throw new Error(`fresh key ${key} was not acquired`)
      if (index % sampleEvery === 0) sampledTokens.set(key, result.fencingToken)
      if (!(await store.release(key, `owner-${index}`))) throw new Error(`release of ${key} said "not owned"`)
      releasedAt.push(Date.now())
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { releasedAt, sampledTokens, elapsedMs: performance.now() - started }
}

/**
 * Polls `count()` every `everyMs` until `stop` resolves, and keeps each sample with its wall-clock time:
 * the footprint while the keys are being locked, not only after.
 */
export function sampleWhile(
  count: () => Promise<number>,
  everyMs: number,
): { samples: Array<{ at: number; rows: number }>; stop(): Promise<void> } {
  const samples: Array<{ at: number; rows: number }> = []
  let running = true
  const loop = (async () => {
    while (running) {
      const at = Date.now()
      samples.push({ at, rows: await count() })
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    samples,
    stop: async () => {
      running = false
      await loop
    },
  }
}

/**
 * The most rows a table may hold at `at` if every ended row goes within `windowMs` of its release: the
 * `live` locks plus the keys released in the window plus those in flight.
 */
export function allowedRows(releasedAt: number[], at: number, windowMs: number, live: number, inFlight: number): number {
  let recent = 0
  for (const time of releasedAt) if (time <= at && time > at - windowMs) recent++
  return live + recent + inFlight
}

/** Resolves once `count()` returns `expected`, or with the last count after `timeoutMs`. */
export async function waitForCount(count: () => Promise<number>, expected: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const rows = await count()
    if (rows === expected || performance.now() > deadline) return rows
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}
