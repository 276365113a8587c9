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

/** One row count, with the wall-clock times (Date.now) at which its query was sent and answered. */
export interface RowSample {
  sentAt: number
  answeredAt: number
  rows: number
}

/**
 * Polls `count()` every `everyMs` until `stop` resolves, and keeps each sample with the times its query was
 * sent and answered: the footprint while the keys are being locked, not only after. The server reads its
 * snapshot somewhere between the two, and on a loaded machine that can be hundreds of milliseconds after
 * the query was sent, so the bound must cover the whole span.
 */
export function sampleWhile(count: () => Promise<number>, everyMs: number): { samples: RowSample[]; stop(): Promise<void> } {
  const samples: RowSample[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      const sentAt = Date.now()
      const rows = await count()
      samples.push({ sentAt, answeredAt: Date.now(), rows })
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
 * The most rows a table may hold in a sample if every ended row goes within `windowMs` of its release:
 * the `live` locks, plus the `inFlight` keys a worker was between acquire and answered release at the
 * snapshot, plus every key whose release was answered before the snapshot (so by `answeredAt`) and less
 * than `windowMs` before it (so after `sentAt - windowMs`).
 */
export function allowedRows(releasedAt: number[], sample: RowSample, windowMs: number, live: number, inFlight: number): number {
  let recent = 0
  for (const time of releasedAt) if (time <= sample.answeredAt && time > sample.sentAt - windowMs) recent++
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
