import { type AcquireResult, errors, type SharedLockStore, type SharedMode, type WaitOptions } from '@verrou/core'
import type { Connection, Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import type { ConnectionGate } from './connection_gate.js'
import { keyHash, toBytes } from './key_bytes.js'
import { retryingDeadlocks } from './retrying_deadlocks.js'
import { type SharedStatements, sharedStatements } from './shared_sql.js'
import {
  type Decision,
  decideAcquire,
  decideForceRelease,
  decideHolding,
  decideLeave,
  decodeState,
  EMPTY_STATE,
  encodeState,
  isLockedIn,
  type SharedState,
  stateEndsAt,
} from './shared_state.js'
import { PRUNE_BATCH } from './sql.js'
import type { StatementSender } from './statement_sender.js'
import { SHARED_SUFFIX } from './table_name.js'

/** What the shared store borrows from the `MysqlStore` it belongs to. */
export interface SharedContext {
  db: Pool | Connection
  /** Set on a lone connection: everything the store sends on it goes through it. */
  gate: ConnectionGate | undefined
  /** Sends statements outside any transaction, through `gate`. */
  statements: StatementSender
  /** The quoted shared table, `undefined` when the configured name leaves no room for its suffix. */
  table: string | undefined
  floor: string
  /** Params: token, token. Raises the floor, as the mutex pruning does. */
  raiseFloor: string
  storeName: string
  autoCreateTable: boolean
  /** Creates the mutex tables and the seeded floor (the floor is shared with mutex keys). */
  ensureMutexTables: () => Promise<void>
  /** Starts background housekeeping, as any operation of the store does. */
  touched: () => void
}

/** InnoDB's deadlock victim and lock wait timeout: the transaction is rolled back (by us, for the latter) and run again. */
const ER_LOCK_DEADLOCK = 1213
const ER_LOCK_WAIT_TIMEOUT = 1205
const ER_NO_SUCH_TABLE = 1146
const ER_BAD_NULL_ERROR = 1048
const ER_DUP_ENTRY = 1062
const TRANSACTION_ATTEMPTS = 3
// A fresh key takes one pass to create its row; pruning deleting it in between costs another.
const MISSING_ROW_PASSES = 3

type Decide<T> = (state: SharedState, now: number) => Decision<T> & { grant?: boolean }

/**
 * Semaphores and read-write locks in `<tableName>_shared`: one row per shared key holding its holders, its
 * FIFO queue (as JSON) and its fencing counter. The grant rule runs here, on the row and the server's clock
 * read together: first optimistically (a plain read, then a write only over the version read), and, when
 * another session wrote in between, again in a short transaction under SELECT ... FOR UPDATE. Either way the
 * write lands only on the row the decision was made from, so no update is lost at any isolation level.
 */
export class MysqlSharedStore implements SharedLockStore {
  readonly #context: SharedContext
  readonly #sql: SharedStatements | undefined
  #tableReady: Promise<void> | undefined

  constructor(context: SharedContext) {
    this.#context = context
    this.#sql = context.table === undefined ? undefined : sharedStatements(context.table, context.floor)
  }

  acquire(key: string, owner: string, mode: SharedMode, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    return this.#decide('acquire', key, true, (state, now) => {
      const decision = decideAcquire(state, { owner, mode, ttl, lease: wait?.lease }, now)
      return { ...decision, grant: decision.answer.acquired }
    }).then(({ answer, token }): AcquireResult => (answer.acquired ? { acquired: true, fencingToken: token } : answer))
  }

  async release(key: string, owner: string, mode: SharedMode): Promise<boolean> {
    const { answer } = await this.#decide('release', key, false, (state, now) =>
      decideHolding(state, owner, mode.exclusive, undefined, now),
    )
    return answer
  }

  async extend(key: string, owner: string, mode: SharedMode, ttl: number | null): Promise<boolean> {
    const { answer } = await this.#decide('extend', key, false, (state, now) =>
      decideHolding(state, owner, mode.exclusive, ttl, now),
    )
    return answer
  }

  async forceRelease(key: string, mode: SharedMode): Promise<void> {
    await this.#decide('force release', key, false, (state, now) => decideForceRelease(state, mode.exclusive, now))
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    await this.#decide('leave the wait queue of', key, false, (state, now) => decideLeave(state, owner, now))
  }

  /** One plain read: nothing to write, so no transaction. */
  isLocked(key: string, mode: SharedMode): Promise<boolean> {
    return this.#guard('check', key, async (sql) => {
      const rows = await this.#statements.execute<RowDataPacket[]>(sql.selectPlain, [keyHash(toBytes(key))])
      const row = rows[0]
      if (row === undefined || Number(row.found) === 0) return false
      return isLockedIn(decodeState(row.state as Buffer), mode, Number(row.now_ms))
    })
  }

  /**
   * Deletes up to `maxBatches` batches of rows with no live holder and no live place, after raising the floor
   * over their tokens, so a key that comes back never reuses a token. A missing table is nothing to prune.
   */
  async pruneEnded(maxBatches: number): Promise<number> {
    const sql = this.#sql
    if (sql === undefined) return 0
    let deleted = 0
    try {
      for (let batch = 0; batch < maxBatches; batch++) {
        const rows = await retryingDeadlocks(() => this.#statements.execute<RowDataPacket[]>(sql.selectEnded, []))
        if (rows.length === 0) break
        const hashes = rows.map((row) => row.key_hash as Buffer)
        const highest = rows.reduce((max, row) => Math.max(max, Number(row.fencing_token)), 0)
        // The floor covers the rows before they go, as for mutex rows.
        await retryingDeadlocks(() => this.#statements.execute(this.#context.raiseFloor, [highest, highest]))
        const padded = Array.from({ length: PRUNE_BATCH }, (_, i) => hashes[i] ?? hashes[0]!)
        const header = await retryingDeadlocks(() =>
          this.#statements.execute<ResultSetHeader>(sql.deleteEnded, [...padded, highest]),
        )
        deleted += header.affectedRows
        if (rows.length < PRUNE_BATCH) break
      }
    } catch (error) {
      if (errnoOf(error) !== ER_NO_SUCH_TABLE) throw error
    }
    return deleted
  }

  /**
   * Runs `decide` on the row of `key` and writes what it decided, atomically. First optimistically, with no
   * transaction: a plain read, then a write only over the version read (or the insert of a key's first row);
   * answers that change nothing cost that one read. If another session wrote in between, the decision is
   * made again under the row lock (`#decideLocked`), which cannot lose: two attempts at most.
   */
  #decide<T>(operation: string, key: string, create: boolean, decide: Decide<T>): Promise<{ answer: T; token: number }> {
    return this.#guard(operation, key, async (sql) => {
      const keyBytes = toBytes(key)
      const hash = keyHash(keyBytes)
      const rows = await this.#statements.execute<RowDataPacket[]>(sql.selectPlain, [hash])
      const row = rows[0]
      if (row === undefined) throw new Error('the read returned no row')
      const now = Number(row.now_ms)
      if (Number(row.found) === 0) {
        const decision = decide(EMPTY_STATE, now)
        if (!create || decision.next === undefined) return { answer: decision.answer, token: 0 }
        const params = [hash, keyBytes, encodeState(decision.next), stateEndsAt(decision.next, now)]
        const inserted = await retryingDeadlocks(() =>
          this.#statements.execute<ResultSetHeader>(sql.insertGranted, params),
        ).catch((error: unknown) => {
          if (errnoOf(error) === ER_DUP_ENTRY) return undefined
          throw this.#floorMissing(error, operation, key)
        })
        if (inserted !== undefined) return { answer: decision.answer, token: Number(inserted.insertId) }
      } else {
        const token = Number(row.fencing_token)
        const decision = decide(decodeState(row.state as Buffer), now)
        const nextToken = decision.grant === true ? token + 1 : token
        if (decision.next === undefined) return { answer: decision.answer, token: nextToken }
        const params = [encodeState(decision.next), nextToken, stateEndsAt(decision.next, now), hash, Number(row.version)]
        // A deadlock victim or a lock wait timeout changed nothing: the locked path decides instead.
        const written = await this.#statements.execute<ResultSetHeader>(sql.updateIfUnchanged, params).catch((error: unknown) => {
          const errno = errnoOf(error)
          if (errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT) return undefined
          throw error
        })
        if (written !== undefined && written.affectedRows > 0) return { answer: decision.answer, token: nextToken }
      }
      return this.#decideLocked(sql, operation, key, create, decide)
    })
  }

  #floorMissing(error: unknown, operation: string, key: string): unknown {
    if (errnoOf(error) !== ER_BAD_NULL_ERROR) return error
    return errors.E_LOCK_STORAGE_ERROR.from(error, {
      operation,
      key,
      store: this.#context.storeName,
      detail: `${this.#context.floor} has no row; create it as the README shows`,
    })
  }

  /**
   * Runs `decide` on the row of `key` inside a transaction that holds the row lock. A missing row reads as
   * empty; `create` (acquire) first inserts it empty, outside the transaction: inserting inside it, after a
   * locking read that found nothing, would hold a gap lock and deadlock against a concurrent first acquirer.
   */
  async #decideLocked<T>(
    sql: SharedStatements,
    operation: string,
    key: string,
    create: boolean,
    decide: Decide<T>,
  ): Promise<{ answer: T; token: number }> {
    const keyBytes = toBytes(key)
    const hash = keyHash(keyBytes)
    for (let pass = 1; ; pass++) {
      const outcome = await this.#transaction(async (connection) => {
        const [rows] = await connection.execute<RowDataPacket[]>(sql.selectForUpdate, [hash])
        const row = rows[0]
        if (row === undefined) throw new Error('the locking read returned no row')
        const now = Number(row.now_ms)
        if (Number(row.found) === 0) {
          if (create) return undefined
          return { answer: decide(EMPTY_STATE, now).answer, token: 0 }
        }
        const token = Number(row.fencing_token)
        const decision = decide(decodeState(row.state as Buffer), now)
        const nextToken = decision.grant === true ? token + 1 : token
        if (decision.next !== undefined) {
          const endsAt = stateEndsAt(decision.next, now)
          await connection.execute(sql.update, [encodeState(decision.next), nextToken, endsAt, hash])
        }
        return { answer: decision.answer, token: nextToken }
      })
      if (outcome !== undefined) return outcome
      if (pass >= MISSING_ROW_PASSES) throw new Error(`the row of a shared key kept disappearing (${pass} passes)`)
      await retryingDeadlocks(() => this.#statements.execute(sql.insertEmpty, [hash, keyBytes])).catch((error: unknown) => {
        throw this.#floorMissing(error, operation, key)
      })
    }
  }

  /** Runs `body` in a transaction on a connection of its own, again (whole) after a deadlock or a lock wait timeout. */
  async #transaction<T>(body: (connection: Connection) => Promise<T>): Promise<T> {
    const { db, gate } = this.#context
    const attempt = async (connection: Connection): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          await connection.query('START TRANSACTION')
          const result = await body(connection)
          await connection.query('COMMIT')
          return result
        } catch (error) {
          // The server may have rolled back only the statement (lock wait timeout): end the transaction here.
          // If that fails too the session is unusable; the caller drops it.
          await connection.query('ROLLBACK').catch(() => {
            throw new SessionLost(error)
          })
          const errno = errnoOf(error)
          if (attempt >= TRANSACTION_ATTEMPTS || (errno !== ER_LOCK_DEADLOCK && errno !== ER_LOCK_WAIT_TIMEOUT)) throw error
        }
      }
    }
    if (!isPool(db)) {
      const run = () => attempt(db).catch(unwrapLost)
      return gate === undefined ? run() : gate.run(run)
    }
    const connection: PoolConnection = await db.getConnection()
    try {
      const result = await attempt(connection)
      connection.release()
      return result
    } catch (error) {
      // A session whose transaction state is unknown must not go back to the pool.
      if (error instanceof SessionLost) connection.destroy()
      else connection.release()
      return unwrapLost(error)
    }
  }

  /** Statements outside any transaction: through the gate on a lone connection. */
  get #statements(): StatementSender {
    return this.#context.statements
  }

  async #guard<T>(operation: string, key: string, body: (sql: SharedStatements) => Promise<T>): Promise<T> {
    const { storeName } = this.#context
    const sql = this.#sql
    if (sql === undefined) {
      throw new errors.E_INVALID_ARGUMENT(
        `semaphores and read-write locks need the table <tableName>${SHARED_SUFFIX}: shorten tableName to at most ${64 - SHARED_SUFFIX.length} characters`,
      )
    }
    this.#context.touched()
    try {
      await this.#ensureTable(sql)
      return await body(sql)
    } catch (error) {
      if (errors.isVerrouError(error)) throw error
      throw errors.E_LOCK_STORAGE_ERROR.from(error, { operation, key, store: storeName })
    }
  }

  /** Creates the shared table (and the mutex tables with the floor it shares) once per store. */
  #ensureTable(sql: SharedStatements): Promise<void> {
    if (!this.#context.autoCreateTable) return Promise.resolve()
    this.#tableReady ??= (async () => {
      await this.#context.ensureMutexTables()
      await this.#statements.query(sql.createTable)
    })().catch((error: unknown) => {
      this.#tableReady = undefined
      throw error
    })
    return this.#tableReady
  }
}

/** A rollback that failed: the session's transaction state is unknown. */
class SessionLost extends Error {
  constructor(readonly original: unknown) {
    super('the session was lost during a transaction')
  }
}

function unwrapLost(error: unknown): never {
  throw error instanceof SessionLost ? error.original : error
}

export function isPool(db: Pool | Connection): db is Pool {
  return typeof (db as Partial<Pool>).getConnection === 'function'
}

function errnoOf(error: unknown): unknown {
  return (error as { errno?: unknown } | null)?.errno
}
