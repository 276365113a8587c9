import type { SharedSettings } from './backends/backend.js'
import type { Hold } from './contention.js'
import type { Counters, StoreId } from './subject.js'

/**
 * Messages between the bench and its contention worker processes (over the fork IPC channel).
 * Times are `performance.timeOrigin + performance.now()`: one clock every process on the machine shares.
 */
export type ToWorker =
  | {
      type: 'setup'
      store: StoreId
      runId: string
      shared: SharedSettings
      subjectId: string
      worker: number
      key: string
    }
  | { type: 'go'; deadline: number; holdMs: number }

export type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; holds: Hold[]; counters: Counters }
  | { type: 'failed'; error: string }

/** Now, on the clock every process shares. */
export const sharedNow = (): number => performance.timeOrigin + performance.now()
