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

/**
 * Thrown by `start` when a store cannot be measured yet because its code has not landed (its driver does
 * not export its factory, or its test server is missing). The run leaves it out and says why; any other
 * failure to start is an error.
 */
export class NotLandedYet extends Error {}

/** Imports a module that may not exist yet; `undefined` if it does not. */
export async function importIfPresent(specifier: string | URL): Promise<Record<string, unknown> | undefined> {
  try {
    const module: Record<string, unknown> = await import(String(specifier))
    return module
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined
    throw error
  }
}
