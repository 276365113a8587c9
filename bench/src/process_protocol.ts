import type { SharedSettings } from './backends/backend.js'
import type { Hold } from './contention.js'
import type { Counters, StoreId } from './subject.js'

/**
 * Messages between the bench and its contention worker processes (over the fork IPC channel).
 * Times are on the kernel's monotonic clock (`process.hrtime`), which every process on the machine shares.
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
  /** Contend on a warm-up key until `deadline`, so the waiting path (listener, queue statements) is warm too. */
  | { type: 'warm'; deadline: number; holdMs: number }
  | { type: 'go'; deadline: number; holdMs: number }
  /** Sent once every worker is done: none closes its connections while another may still be measuring a wait. */
  | { type: 'close' }

export type FromWorker =
  | { type: 'ready' }
  | { type: 'warmed' }
  | { type: 'done'; holds: Hold[]; counters: Counters }
  | { type: 'closed' }
  | { type: 'failed'; error: string }

/**
 * Now in ms, on the clock every process shares. Not `performance.timeOrigin + performance.now()`: the
 * origin is sampled from the wall clock as each process starts, and can be off by milliseconds between
 * processes on a loaded machine.
 */
export const sharedNow = (): number => Number(process.hrtime.bigint()) / 1e6
