import type { StoreId, Subject } from '../subject.js'

/** What every backend of one run shares. */
export interface RunContext {
  /** Short random id in every key and table name of this run, so runs never collide or leave a mess. */
  runId: string
}

/** A backend ready to measure: its subjects, and how to clean up after them. */
export interface StartedBackend {
  /** The server as the report names it, e.g. `Redis 7.0.15`. */
  server: string
  subjects: Subject[]
  /** Deletes what the run wrote and stops what `start` started. */
  stop(): Promise<void>
}

export interface Backend {
  store: StoreId
  label: string
  start(context: RunContext): Promise<StartedBackend>
}
