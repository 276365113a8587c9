import type { StoreId, Subject } from '../subject.js'

/** What every backend of one run shares. */
export interface RunContext {
  /** Short random id in every key and table name of this run, so runs never collide or leave a mess. */
  runId: string
}

/**
 * What a worker process needs, besides the run id, to reach the servers and tables `start` set up (a
 * server's address when `start` launched it). Plain strings: it travels to the worker as JSON.
 */
export type SharedSettings = Record<string, string>

/** A backend ready to measure: its subjects, and how to clean up after them. */
export interface StartedBackend {
  /** The server as the report names it, e.g. `Redis 7.0.15`. */
  server: string
  subjects: Subject[]
  /** Given to `attach` in worker processes; absent for a store that lives in one process (memory). */
  shared?: SharedSettings
  /** Deletes what the run wrote and stops what `start` started. */
  stop(): Promise<void>
}

export interface Backend {
  store: StoreId
  label: string
  start(context: RunContext): Promise<StartedBackend>
  /**
   * The same subjects, built in another process on what `start` set up there: how the contention scenario
   * across processes gives each worker a process of its own. Absent for in-process stores.
   */
  attach?(context: RunContext, shared: SharedSettings): Subject[]
}

/** One of the shared settings `start` wrote, which a worker cannot do without. */
export function required(shared: SharedSettings, name: string): string {
  const value = shared[name]
  if (value === undefined) throw new Error(`the worker was not given the "${name}" setting of its backend`)
  return value
}
