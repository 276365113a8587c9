import {
  type AcquireResult,
  errors,
  type SharedLockStore,
  type SharedMode,
  type Unsubscribe,
  type WaitOptions,
} from '@verrou/core'
import type { QueryResult } from 'pg'
import { toAcquireResult } from './acquire_reply.js'
import type { Query } from './connection.js'
import type { ReleaseHandler } from './release_listener.js'
import type { SharedOperation, SharedStatements } from './shared_sql.js'
import { sharedPayload, toStoredBytes } from './text_bytes.js'

/** What the shared-lock store borrows from its `PostgresStore`. */
export interface SharedStoreContext {
  readonly statements: SharedStatements
  /** The table's NOTIFY channel; shared keys are told apart by their payload (see `sharedPayload`). */
  readonly channel: string
  /** Runs one statement on the shared table: creates it first, retries transient conflicts, wraps failures. */
  run(operation: string, key: string, query: Query): Promise<QueryResult>
  /** The statement as a named prepared statement, unless they are turned off. */
  hot(statement: { readonly name: string; readonly text: string }, values: unknown[]): Query
  /** Absent with `listen: false`. */
  readonly subscribe?: (payload: string, listener: ReleaseHandler) => Promise<Unsubscribe>
}

interface SharedRow {
  granted_token: string | null
  expires_in: number | null
  queue_position: number | null
  answer: boolean | null
}

/** How errors name this store. */
const STORE_NAME = 'PostgreSQL lock store (shared locks)'

/**
 * Semaphores and read-write locks on PostgreSQL (`PostgresStore.shared`): each operation is one call of the
 * function created with the `<table>_shared` table (see shared_sql.ts), so one statement and one round trip.
 */
export class PostgresSharedStore implements SharedLockStore {
  readonly #context: SharedStoreContext

  /** Present unless the store was made with `listen: false`, as for the mutex. */
  readonly subscribeToReleases?: (key: string, listener: ReleaseHandler) => Promise<Unsubscribe>

  constructor(context: SharedStoreContext) {
    this.#context = context
    const { subscribe } = context
    if (subscribe !== undefined) {
      this.subscribeToReleases = (key, listener) => subscribe(sharedPayload(key), listener)
    }
  }

  async acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const row = await this.#call('acquire', key, owner, mode, ttl, wait === undefined ? null : wait.lease)
    return toAcquireResult({ token: row.granted_token, expiresIn: row.expires_in, position: row.queue_position }, key, STORE_NAME)
  }

  async release(key: string, owner: string, mode: SharedMode): Promise<boolean> {
    return (await this.#call('release', key, owner, mode, null, null)).answer === true
  }

  async extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean> {
    return (await this.#call('extend', key, owner, mode, ttl, null)).answer === true
  }

  async forceRelease(key: string, mode: SharedMode): Promise<void> {
    await this.#call('force_release', key, null, mode, null, null)
  }

  async isLocked(key: string, mode: SharedMode): Promise<boolean> {
    return (await this.#call('is_locked', key, null, mode, null, null)).answer === true
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    await this.#call('leave_queue', key, owner, { exclusive: false, limit: null }, null, null)
  }

  async #call(
    operation: SharedOperation,
    key: string,
    owner: string | null,
    mode: SharedMode,
    ttl: number | null,
    placeLease: number | null,
  ): Promise<SharedRow> {
    const { statements, channel } = this.#context
    const values = [
      operation,
      toStoredBytes(key),
      owner === null ? null : toStoredBytes(owner),
      mode.exclusive,
      mode.exclusive ? null : mode.limit,
      ttl,
      placeLease,
      channel,
      sharedPayload(key),
    ]
    const result = await this.#context.run(operation.replace('_', ' '), key, this.#context.hot(statements.operation, values))
    const row = result.rows[0] as SharedRow | undefined
    if (row === undefined) {
      throw errors.E_LOCK_STORAGE_ERROR.from(new Error('the shared lock function returned no row'), {
        operation,
        key,
        store: STORE_NAME,
      })
    }
    return row
  }
}
