import { createHash } from 'node:crypto'
import { type AcquireResult, claimDelay, errors, type LockStore, PendingClaims, type WaitOptions } from '@verrou/core'
import { Housekeeping } from '@verrou/sql-housekeeping'
import type { Connection, Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { ConnectionGate } from './connection_gate.js'
import { keyHash, toBytes } from './key_bytes.js'
import { RecentRows } from './recent_rows.js'
import { retryingDeadlocks } from './retrying_deadlocks.js'
import { isPool, MysqlSharedStore } from './shared_store.js'
import {
  type LockStatements,
  lockStatements,
  NO_ROW,
  type Param,
  PRUNE_BATCH,
  QUEUE_PRESENT,
  readAcquire,
  readExisting,
  readPeek,
  SCAN_PAGE,
  type Statement,
} from './sql.js'
import { type StatementParams, StatementSender } from './statement_sender.js'
import { type LockTables, resolveTables } from './table_name.js'

/** How this store's errors name it. */
const STORE_NAME = 'MySQL lock store'

/** ER_BAD_NULL_ERROR: the acquire statement's token came out NULL, so the floor table has no row. */
const MISSING_FLOOR_ROW = 1048
/** ER_BAD_FIELD_ERROR: here, a lock table created by a release before wait queues. */
const UNKNOWN_COLUMN = 1054
/** ER_DUP_FIELDNAME: another process added the wait-queue columns first. */
const DUPLICATE_COLUMN = 1060

export interface MysqlStoreOptions {
  /** A `mysql2/promise` pool (recommended) or connection. You own it: the store never ends it. */
  connection: Pool | Connection
  /**
   * Default `verrou_locks`; `database.table` is allowed. The store also uses `<tableName>_floor`, and
   * `<tableName>_shared` for semaphores and read-write locks.
   */
  tableName?: string
  /** Create both tables (if missing) before the first operation. Default `true`. */
  autoCreateTable?: boolean
  /**
   * Milliseconds between two background prunes of ended leases, from the store's first operation until
   * `close()`. `false` turns them off (call `pruneExpired()` yourself). Default 60 000.
   */
  pruneInterval?: number | false
}

const DEFAULT_TABLE = 'verrou_locks'
const DEFAULT_PRUNE_INTERVAL = 60_000
// Bounds the hint of who holds a place; forgetting it costs only an extra statement per waiter.
const MAX_REMEMBERED_PLACES = 10_000
/**
 * A waiter whose place this store wrote less than a quarter of its place lease ago, and that was not first
 * in line at its last attempt, polls with a read (no row lock, no commit) instead of the queue statement; older, the attempt writes and so renews the place.
 * Core attempts at least every third of the lease, so a place is written within a quarter plus a third of
 * its lease (1.2 s of 2 s), well before it ends.
 */
const PEEKS_WITHIN = 4
// A cap on the pages (and on the shared table's batches) per pruneExpired() call keeps one call's duration
// bounded; the next call carries on.
const MAX_PRUNE_PAGES = 50

/**
 * Locks in a MySQL 8 / MariaDB 10.6+ table. Every mutex operation is one statement, decided on the
 * server's clock; a lock is a row, not a session, so it survives connection pooling and can be restored
 * from any process.
 */
export class MysqlStore implements LockStore {
  readonly #tables: LockTables
  readonly #sql: LockStatements
  readonly #autoCreateTable: boolean
  readonly #housekeeping: Housekeeping | undefined
  #tablesReady: Promise<void> | undefined
  /** Per key, the owners this store knows to hold a place: they skip the plain statement, which would only pass them on. */
  readonly #places = new Map<string, Map<string, PlaceHint>>()
  #placeCount = 0
  /** Keys whose row exists for sure: their uncontended acquire updates it without reading the floor. */
  readonly #rows = new RecentRows()
  /**
   * Keys whose row had a wait queue lately: their acquires go straight to the queue statement, which the
   * plain one would only pass them on to (a process that just released a contended lock and asks again).
   * Only a hint: if the queue is gone, the queue statement decides alone all the same.
   */
  readonly #queues = new RecentRows()
  /** Where the next prune carries on: the last key hash it read (an empty buffer: from the start). */
  #pruneCursor: Buffer = Buffer.alloc(0)
  /** On a lone connection: keeps every statement out of a shared-lock transaction open on it. */
  readonly #gate: ConnectionGate | undefined
  /** Every statement outside a transaction goes through here (through the gate on a lone connection). */
  readonly #statements: StatementSender
  /** Claims of locks handed over, put off until a quarter of the claim window (see `claimDelay`). */
  readonly #claims = new PendingClaims()
  /** Semaphores and read-write locks, in `<tableName>_shared`. */
  readonly shared: MysqlSharedStore

  constructor(options: MysqlStoreOptions) {
    if (typeof options?.connection?.execute !== 'function') {
      throw new errors.E_INVALID_ARGUMENT('mysqlStore needs `connection`: a mysql2/promise Pool or Connection')
    }
    // mysql2's callback API has the same method names but no promises; its objects offer `.promise()`.
    if (typeof (options.connection as { promise?: unknown }).promise === 'function') {
      throw new errors.E_INVALID_ARGUMENT(
        'mysqlStore needs a mysql2/promise Pool or Connection, got a callback one: pass `connection.promise()`',
      )
    }
    const { pruneInterval = DEFAULT_PRUNE_INTERVAL } = options
    if (pruneInterval !== false && !(Number.isFinite(pruneInterval) && pruneInterval >= 0)) {
      throw new errors.E_INVALID_ARGUMENT(`pruneInterval must be a number of milliseconds or false, got ${String(pruneInterval)}`)
    }
    this.#tables = resolveTables(options.tableName ?? DEFAULT_TABLE)
    this.#sql = lockStatements(this.#tables)
    this.#autoCreateTable = options.autoCreateTable ?? true
    this.#gate = isPool(options.connection) ? undefined : new ConnectionGate()
    this.#statements = new StatementSender(options.connection, this.#gate)
    this.shared = new MysqlSharedStore({
      db: options.connection,
      gate: this.#gate,
      statements: this.#statements,
      table: this.#tables.shared,
      floor: this.#tables.floor,
      raiseFloor: this.#sql.raiseFloor,
      storeName: STORE_NAME,
      autoCreateTable: this.#autoCreateTable,
      ensureMutexTables: () => this.#ensureTables(),
      touched: () => this.#housekeeping?.start(),
    })
    if (pruneInterval !== false) {
      const connection = options.connection
      this.#housekeeping = new Housekeeping({
        interval: pruneInterval,
        run: async () => (await this.#prune()).more,
        connectionEnded: () => connectionEnded(connection),
      })
    }
  }

  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    return this.#run('acquire', key, async () => {
      // Before any write: a place written by this call got its lease no earlier.
      const startedAt = performance.now()
      const keyBytes = toBytes(key)
      const ownerBytes = toBytes(owner)
      const values: Partial<Record<Param, Buffer | number | null>> = {
        keyHash: keyHash(keyBytes),
        key: keyBytes,
        owner: ownerBytes,
        ttl,
        lease: wait === undefined ? null : wait.lease,
      }
      // A caller that holds a place goes straight to the queue statement; anyone else tries the plain one,
      // which answers alone unless the key has a queue.
      const place = wait === undefined ? undefined : this.#places.get(key)?.get(owner)
      const queued = place !== undefined
      // A waiter with a place reads first, without writing the row: a release may have handed it the lock
      // (then it is answered at once and claims in the background), and while its place was written lately
      // a refusal needs no write either. Otherwise the statements below decide, and renew the place.
      if (wait !== undefined && place !== undefined) {
        const id = ownerId(ownerBytes)
        const peeked = readPeek(await this.#peek(key, id, place.head && !place.behindDead))
        if (peeked !== undefined && 'handedToken' in peeked) {
          this.#forget(key, owner)
          this.#rows.saw(key, startedAt)
          const claimed = this.#claims.schedule(key, owner, claimDelay(ttl, peeked.windowLeft), () =>
            this.#claim(key, values, id, peeked.handedToken),
          )
          // `Lock` always follows the claim; a caller of the store that does not must not crash the process.
          claimed.catch(() => {})
          return { acquired: true, fencingToken: peeked.handedToken, handedOver: { lease: peeked.windowLeft, claimed } }
        }
        if (peeked !== undefined && startedAt - place.writtenAt < wait.lease / PEEKS_WITHIN) {
          place.head = !peeked.acquired && peeked.position === 0
          return peeked
        }
      }
      let result: AcquireResult | typeof QUEUE_PRESENT | typeof NO_ROW | undefined
      const plain = !queued && !this.#queues.has(key, startedAt)
      if (plain && this.#rows.has(key, startedAt)) {
        result = await this.#acquireWith(this.#sql.acquireExisting, values, key, wait !== undefined, readExisting)
        if (result === NO_ROW) this.#rows.forget(key)
      }
      if (plain && (result === undefined || result === NO_ROW)) {
        result = await this.#acquireWith(this.#sql.acquire, values, key, wait !== undefined, readAcquire)
      }
      // The head's attempt: one short statement while its place opens the queue, as it almost always does.
      if (place?.head === true && !place.behindDead) {
        values.ownerId = ownerId(ownerBytes)
        result = await this.#acquireWith(this.#sql.acquireAtFront, values, key, true, readExisting)
        // A dead place opens the queue, and only a grant drops it: the rest of this wait goes straight to the
        // queue statement, one statement per attempt.
        if (result === QUEUE_PRESENT) place.behindDead = true
      }
      if (result === undefined || result === QUEUE_PRESENT || result === NO_ROW) {
        // Only the queue knows owners by id: the plain statement, on the uncontended path, never hashes one.
        values.ownerId ??= ownerId(ownerBytes)
        const passedOn = result === QUEUE_PRESENT
        result = await this.#acquireWith(this.#sql.acquireQueued, values, key, wait !== undefined, readAcquire)
        // A queue stood here, or stands: the caller's own place, or others' ahead of the one it just took.
        if (passedOn || queued || (result !== QUEUE_PRESENT && !result.acquired && result.position !== undefined)) {
          this.#queues.saw(key, startedAt)
        }
      }
      if (result === QUEUE_PRESENT) throw new Error('the queue statement reported a queue instead of deciding')
      this.#rows.saw(key, startedAt)
      if (wait !== undefined && !result.acquired) this.#remember(key, owner, startedAt, result.position === 0)
      else if (result.acquired) this.#forget(key, owner)
      return result
    })
  }

  async #acquireWith<Result>(
    statement: Statement,
    values: Partial<Record<Param, Buffer | number | null>>,
    key: string,
    waited: boolean,
    read: (insertId: number, waited: boolean) => Result,
  ): Promise<Result> {
    const header = await this.#write(statement.sql, bind(statement, values)).catch((error: unknown) => {
      if ((error as { errno?: unknown } | null)?.errno !== MISSING_FLOOR_ROW) throw error
      throw errors.E_LOCK_STORAGE_ERROR.from(error, {
        operation: 'acquire',
        key,
        store: STORE_NAME,
        detail: `${this.#tables.floor} has no row; create it as the README shows`,
      })
    })
    return read(Number(header.insertId), waited)
  }

  /** Claims a lock a release handed to the caller with `token` (see `claim` in sql.ts): whether it was still its to claim. */
  #claim(key: string, values: Partial<Record<Param, Buffer | number | null>>, id: Buffer, token: number): Promise<boolean> {
    return this.#run('claim', key, async () => {
      const header = await this.#write(this.#sql.claim.sql, bind(this.#sql.claim, { ...values, ownerId: id, token }))
      return Number(header.insertId) > 0
    })
  }

  /**
   * One consistent read of what `ownerId`'s next attempt would meet (see `peekQueued`); for a caller last
   * seen at the head, the read that looks at the first place only (`peekAtFront`).
   */
  async #peek(key: string, id: Buffer, head: boolean): Promise<RowDataPacket[]> {
    const values = { keyHash: keyHash(toBytes(key)), ownerId: id }
    const peek = head ? this.#sql.peekAtFront : this.#sql.peekQueued
    return this.#statements.execute<RowDataPacket[]>(peek.sql, bind(peek, values))
  }

  /** Notes that `owner` holds a place in the queue of `key` (only a hint: it picks the first statement). */
  #remember(key: string, owner: string, writtenAt: number, head: boolean): void {
    if (this.#placeCount >= MAX_REMEMBERED_PLACES) {
      this.#places.clear()
      this.#placeCount = 0
    }
    let owners = this.#places.get(key)
    if (owners === undefined) {
      owners = new Map()
      this.#places.set(key, owners)
    }
    const known = owners.get(owner)
    if (known === undefined) this.#placeCount++
    owners.set(owner, { writtenAt, head, behindDead: known?.behindDead ?? false })
  }

  #forget(key: string, owner: string): void {
    const owners = this.#places.get(key)
    if (owners?.delete(owner) !== true) return
    this.#placeCount--
    if (owners.size === 0) this.#places.delete(key)
  }

  /** Removes `owner`'s place from the wait queue of `key`, if it has one: one statement. */
  leaveQueue(key: string, owner: string): Promise<void> {
    return this.#run('leave the wait queue of', key, async () => {
      this.#forget(key, owner)
      const values = { keyHash: keyHash(toBytes(key)), ownerId: ownerId(toBytes(owner)) }
      await this.#write(this.#sql.leaveQueue.sql, bind(this.#sql.leaveQueue, values))
    })
  }

  release(key: string, owner: string): Promise<boolean> {
    // A claim not sent yet never will be: the release ends (or hands on) the grant as it stands.
    this.#claims.cancel(key, owner)
    return this.#run('release', key, async () => {
      const sentAt = performance.now()
      const values = { keyHash: keyHash(toBytes(key)), owner: toBytes(owner) }
      // No queue seen lately: the lighter statement frees the lock if nobody waits (paired against the
      // full one, about a fifth less time per release). A queue, or a lease not ours, is left to the full one.
      if (!this.#queues.has(key, sentAt)) {
        const unqueued = await this.#write(this.#sql.releaseUnqueued.sql, bind(this.#sql.releaseUnqueued, values))
        if (unqueued.affectedRows > 0) {
          this.#rows.saw(key, sentAt)
          return true
        }
      }
      const header = await this.#write(this.#sql.release.sql, bind(this.#sql.release, values))
      if (header.affectedRows > 0) this.#rows.saw(key, sentAt)
      return header.affectedRows > 0
    })
  }

  extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    return this.#run('extend', key, async () => {
      const sentAt = performance.now()
      const values = { ttl, keyHash: keyHash(toBytes(key)), owner: toBytes(owner) }
      const header = await this.#write(this.#sql.extend.sql, bind(this.#sql.extend, values))
      if (Number(header.insertId) > 0) this.#rows.saw(key, sentAt)
      return Number(header.insertId) > 0
    })
  }

  forceRelease(key: string): Promise<void> {
    return this.#run('force release', key, async () => {
      const sentAt = performance.now()
      const header = await this.#write(this.#sql.forceRelease, [keyHash(toBytes(key))])
      if (header.affectedRows > 0) this.#rows.saw(key, sentAt)
    })
  }

  isLocked(key: string): Promise<boolean> {
    return this.#run('check', key, async () => {
      const rows = await this.#statements.execute<RowDataPacket[]>(this.#sql.isLocked, [keyHash(toBytes(key))])
      return rows.length > 0
    })
  }

  /**
   * Deletes rows whose lease ended at least 2 s ago (released, force-released or expired) and whose queue has
   * no live place, then shared keys with no live holder and no live place, and returns how many. It reads
   * up to 50 000 lock rows per call in primary-key order, carrying on where the last call stopped. Their
   * highest fencing token is first recorded in the floor table, which new rows start above, so tokens keep
   * increasing for a key whose row was pruned.
   */
  async pruneExpired(): Promise<number> {
    return (await this.#prune()).deleted
  }

  /** One prune; `more` says a limit stopped it before the end (housekeeping then runs again at once). */
  async #prune(): Promise<{ deleted: number; more: boolean }> {
    try {
      await this.#ensureTables()
      const locks = await this.#pruneLocks()
      const shared = await this.shared.pruneEnded(MAX_PRUNE_PAGES)
      return { deleted: locks.deleted + shared, more: locks.more || shared >= MAX_PRUNE_PAGES * PRUNE_BATCH }
    } catch (error) {
      if (error instanceof errors.VerrouError) throw error
      throw errors.E_LOCK_STORAGE_ERROR.from(error, {
        operation: 'prune ended leases',
        store: STORE_NAME,
        detail: this.#explain(error),
      })
    }
  }

  /**
   * Walks the lock table a page at a time from the cursor, wrapping round once to the start, and deletes
   * what each page may lose. A page is a consistent read: deletion decides again under the row locks.
   */
  async #pruneLocks(): Promise<{ deleted: number; more: boolean }> {
    let deleted = 0
    let wrapped = this.#pruneCursor.length === 0
    for (let page = 0; page < MAX_PRUNE_PAGES; page++) {
      const cursor = this.#pruneCursor
      const rows = await retryingDeadlocks(() => this.#statements.execute<RowDataPacket[]>(this.#sql.scanPage, [cursor]))
      const ended = rows.filter((row) => Number(row.prunable) === 1)
      for (let start = 0; start < ended.length; start += PRUNE_BATCH)
        deleted += await this.#deleteEnded(ended.slice(start, start + PRUNE_BATCH))
      if (rows.length === SCAN_PAGE) {
        this.#pruneCursor = rows[rows.length - 1]!.key_hash as Buffer
        continue
      }
      this.#pruneCursor = Buffer.alloc(0)
      if (wrapped) return { deleted, more: false }
      wrapped = true
    }
    return { deleted, more: true }
  }

  /** Deletes up to PRUNE_BATCH rows that were seen prunable, once the floor covers their tokens. */
  async #deleteEnded(rows: RowDataPacket[]): Promise<number> {
    if (rows.length === 0) return 0
    const hashes = rows.map((row) => row.key_hash as Buffer)
    const highest = rows.reduce((max, row) => Math.max(max, Number(row.fencing_token)), 0)
    // The floor must cover a row before the row goes, or a new row for its key could reuse a token.
    await this.#write(this.#sql.raiseFloor, [highest, highest])
    // One prepared statement whatever the batch size: pad with a repeated hash.
    const padded = Array.from({ length: PRUNE_BATCH }, (_, i) => hashes[i] ?? hashes[0]!)
    const header = await this.#write(this.#sql.deleteEnded, [...padded, highest])
    return header.affectedRows
  }

  /** Stops background housekeeping. Never ends the pool or connection you passed in. */
  async close(): Promise<void> {
    this.#housekeeping?.stop()
  }

  async #run<T>(operation: string, key: string, body: () => Promise<T>): Promise<T> {
    this.#housekeeping?.start()
    try {
      await this.#ensureTables()
      return await body()
    } catch (error) {
      if (errors.isVerrouError(error)) throw error
      throw errors.E_LOCK_STORAGE_ERROR.from(error, { operation, key, store: STORE_NAME, detail: this.#explain(error) })
    }
  }

  /** The upgrade to run by hand when a table from an earlier release meets `autoCreateTable: false`. */
  #explain(error: unknown): string | undefined {
    if ((error as { errno?: unknown } | null)?.errno !== UNKNOWN_COLUMN) return undefined
    return (
      `${(error as Error).message}. ${this.#tables.locks} was created by a release without wait queues; ` +
      `add its columns with: ${this.#sql.upgradeLockTable}`
    )
  }

  #write(sql: string, params: StatementParams): Promise<ResultSetHeader> {
    return retryingDeadlocks(() => this.#statements.execute<ResultSetHeader>(sql, params))
  }

  /**
   * A table created by a release before wait queues lacks their two columns: add them. Two NULL columns
   * at the end is an instant change on MySQL 8 and MariaDB 10.3+. Processes starting at once may race:
   * the loser's duplicate column means the table is ready.
   */
  async #upgradeLockTable(): Promise<void> {
    try {
      await this.#statements.query(this.#sql.probeLockTable)
      return
    } catch (error) {
      if ((error as { errno?: unknown } | null)?.errno !== UNKNOWN_COLUMN) throw error
    }
    await this.#statements.query(this.#sql.upgradeLockTable).catch((error: unknown) => {
      if ((error as { errno?: unknown } | null)?.errno !== DUPLICATE_COLUMN) throw error
    })
  }

  /** Creates the tables once per store; a failed attempt is retried by the next operation. */
  #ensureTables(): Promise<void> {
    if (!this.#autoCreateTable) return Promise.resolve()
    this.#tablesReady ??= (async () => {
      // IF NOT EXISTS and an upsert make this safe when many processes start at once.
      await this.#statements.query(this.#sql.createLockTable)
      await this.#upgradeLockTable()
      await this.#statements.query(this.#sql.createFloorTable)
      await this.#statements.query(this.#sql.seedFloor)
    })().catch((error: unknown) => {
      this.#tablesReady = undefined
      throw error
    })
    return this.#tablesReady
  }
}

/** What a store knows of an owner's place in a key's queue (only a hint: it picks the first statement). */
interface PlaceHint {
  /** When (monotonic ms) the place was last written. */
  writtenAt: number
  /** The owner was first in line at its last attempt. */
  head: boolean
  /** The head statement found a dead place opening the queue during this wait. */
  behindDead: boolean
}

/** A store that keeps locks in a MySQL or MariaDB table, through a `mysql2/promise` pool or connection. */
export function mysqlStore(options: MysqlStoreOptions): MysqlStore {
  return new MysqlStore(options)
}

/**
 * Whether the user ended the pool or connection: background work on it then stops. Duck-typed on mysql2's
 * internals (the promise wrapper keeps the callback object as `pool` / `connection`); unknown shapes count
 * as open, and a failed run only pauses.
 */
function connectionEnded(connection: Pool | Connection): boolean {
  const inner = connection as { pool?: { _closed?: unknown }; connection?: { _closing?: unknown } }
  return inner.pool?._closed === true || inner.connection?._closing === true
}

/** The queue's name for an owner: the SHA-256 of its bytes in lowercase hex, fixed-size (see sql.ts). */
function ownerId(ownerBytes: Buffer): Buffer {
  return Buffer.from(createHash('sha256').update(ownerBytes).digest('hex'), 'latin1')
}

/** The values of a statement's parameters, in placeholder order. */
function bind(statement: Statement, values: Partial<Record<Param, Buffer | number | null>>): Array<Buffer | number | null> {
  return statement.params.map((name) => {
    const value = values[name]
    if (value === undefined) throw new Error(`no value for the parameter ${name}`)
    return value
  })
}
