import { randomUUID } from 'node:crypto'
import {
  type AcquireResult,
  errors,
  HeardHandOvers,
  type LockStore,
  type SharedLockStore,
  type Unsubscribe,
  type WaitOptions,
} from '@verrou/core'
import { Housekeeping } from '@verrou/sql-housekeeping'
import type { QueryResult } from 'pg'
import { toAcquireResult } from './acquire_reply.js'
import {
  connectionEnded,
  isPool,
  listenerClientFactory,
  type PostgresConnection,
  type Query,
  type Queryable,
  toQueryable,
} from './connection.js'
import { RecentQueues } from './recent_queues.js'
import { type ReleaseHandler, ReleaseListener } from './release_listener.js'
import { buildSharedStatements, type SharedStatements } from './shared_sql.js'
import { PostgresSharedStore } from './shared_store.js'
import { buildStatements, HEIR_INBOX_PREFIX, type HotStatement, QUEUE_COLUMNS, type Statements, upgradeTableSql } from './sql.js'
import { PRUNE_MARK_SUFFIX, resolveTableNames, type TableNames } from './table_name.js'
import { releasePayload, toStoredBytes } from './text_bytes.js'
import { retryingConflicts } from './transient_conflicts.js'

/** How this store's errors name it. */
const STORE_NAME = 'PostgreSQL lock store'

export interface PostgresStoreOptions {
  /** A `pg` Pool or Client that you own: the store never ends it. */
  connection: PostgresConnection
  /** `table` or `schema.table`, used exactly as written (quoted). Default `verrou_locks`. */
  tableName?: string
  /** Create the table and its sequence on first use if missing. Default `true`. */
  autoCreateTable?: boolean
  /**
   * Milliseconds a row is kept after its lease ended (released or expired) before housekeeping may delete
   * it. Default 10 minutes. See the README for why this should stay well above any statement's run time.
   */
  pruneAfter?: number
  /**
   * Milliseconds between two background housekeeping runs, from the store's first operation until
   * `close()`; `false` leaves housekeeping to `pruneExpired()`. Default 60 000.
   */
  pruneInterval?: number | false
  /** Rows deleted at most per housekeeping statement. Default 1000. */
  pruneBatchSize?: number
  /**
   * Announce releases with LISTEN/NOTIFY so waiters wake at once (default `true`). Listening uses one
   * extra session per store, opened on the first wait; turn it off behind a transaction-mode pooler.
   */
  listen?: boolean
  /**
   * Send the lock operations as named prepared statements, parsed and planned once per session rather than
   * on every call (default `true`). Turn it off behind a pooler that cannot keep them, such as PgBouncer
   * before 1.21 in transaction mode.
   */
  preparedStatements?: boolean
}

const DEFAULT_TABLE = 'verrou_locks'
const DEFAULT_PRUNE_AFTER_MS = 10 * 60_000
const DEFAULT_PRUNE_INTERVAL_MS = 60_000
const DEFAULT_PRUNE_BATCH = 1000

interface AcquireRow {
  fencing_token: string | null
  expires_in: number | null
  queue_position: number | null
  /** On a refusal with a place: that place, by its lease end (see `placeMark` in sql.ts). */
  place_mark: string | null
  /** True when the grant's token must be drawn again (see `redraw` in sql.ts). */
  redraw: boolean | null
}

/**
 * Locks kept as leases in a PostgreSQL table: one row per key, whose expiry the server's clock decides.
 * Not session-bound (unlike advisory locks), so it works through poolers, survives reconnects, can be
 * serialised and restored elsewhere, and frees itself when its holder dies. Every operation is one
 * statement, hence one round trip (bar the rare second one of acquire: `redraw` in sql.ts).
 *
 * A queueing store: waiters keep FIFO places, with leases on the server's clock, in the lock's own row,
 * and a release announces the first live waiter by name (only when someone waits).
 */
export class PostgresStore implements LockStore {
  readonly #db: Queryable
  readonly #names: TableNames
  readonly #sql: Statements
  readonly #autoCreateTable: boolean
  readonly #preparedStatements: boolean
  readonly #pruneAfter: number
  readonly #pruneBatchSize: number
  readonly #housekeeping: Housekeeping | undefined
  readonly #listener: ReleaseListener | undefined
  /** The places of this store's waiters, and the hand-overs heard for them (listening stores only). */
  readonly #handOvers = new HeardHandOvers()
  /** Keys with a queue lately: their acquires and releases skip the light statements, which would change nothing. */
  readonly #queues = new RecentQueues()
  /** The NOTIFY channel this store's waiters are told on ('' when it does not listen). */
  readonly #inbox: string = ''
  readonly #sharedSql: SharedStatements
  /**
   * Whether each statement is surely a transaction of its own: true on a Pool (every query checks out a
   * session, runs, and hands it back). A Client may be inside the user's transaction, whose commit must
   * never be relaxed by ours.
   */
  readonly #ownTransactions: boolean
  #ready: Promise<void> | undefined
  #sharedReady: Promise<void> | undefined
  /** Set once a shared-lock statement ran: housekeeping then prunes that table too. */
  #sharedInUse = false

  /**
   * Semaphores and read-write locks, in a table of their own (`<tableName>_shared`, created on first use
   * with its function) and apart from the mutex keys. See the README.
   */
  readonly shared: SharedLockStore

  /**
   * Present unless `listen: false`: the lock waits on it instead of only polling. An own property rather
   * than a method, because the contract treats its absence as "this store cannot announce releases".
   */
  readonly subscribeToReleases?: (key: string, listener: ReleaseHandler) => Promise<Unsubscribe>

  constructor(options: PostgresStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new errors.E_INVALID_ARGUMENT('postgresStore needs an options object with a connection')
    }
    const { connection } = options
    if (typeof connection !== 'object' || connection === null || typeof connection.query !== 'function') {
      throw new errors.E_INVALID_ARGUMENT('postgresStore: connection must be a pg Pool or Client')
    }
    this.#names = resolveTableNames(options.tableName === undefined ? DEFAULT_TABLE : options.tableName)
    this.#sql = buildStatements(this.#names)
    this.#db = toQueryable(connection)
    this.#ownTransactions = isPool(connection)
    this.#autoCreateTable = booleanOption(options.autoCreateTable, 'autoCreateTable', true)
    this.#preparedStatements = booleanOption(options.preparedStatements, 'preparedStatements', true)
    this.#pruneAfter = wholeNumberOption(options.pruneAfter, 'pruneAfter', DEFAULT_PRUNE_AFTER_MS)
    const pruneInterval =
      options.pruneInterval === false
        ? false
        : wholeNumberOption(options.pruneInterval, 'pruneInterval', DEFAULT_PRUNE_INTERVAL_MS)
    this.#pruneBatchSize = wholeNumberOption(options.pruneBatchSize, 'pruneBatchSize', DEFAULT_PRUNE_BATCH)
    if (this.#pruneBatchSize < 1 || this.#pruneBatchSize > 2 ** 31 - 1) {
      throw new errors.E_INVALID_ARGUMENT(`pruneBatchSize must be between 1 and 2^31-1, got ${this.#pruneBatchSize}`)
    }
    if (pruneInterval !== false) {
      this.#housekeeping = new Housekeeping({
        interval: pruneInterval,
        run: async () => (await this.pruneExpired()) >= this.#pruneBatchSize,
        connectionEnded: () => connectionEnded(connection),
      })
    }
    if (booleanOption(options.listen, 'listen', true)) {
      // The inbox: a channel of this store's own, recorded with each place it queues, so that a release
      // wakes the waiter's process only. The table's channel still carries what names no inbox (shared
      // locks, and waiters of stores that do not listen).
      // Named as an heir's (HEIR_INBOX_PREFIX): releases may hand this store's waiters the lock.
      this.#inbox = `${HEIR_INBOX_PREFIX}${randomUUID().replaceAll('-', '')}`
      // The table's channel is LISTENed to last: the tests find a store's session by that last query.
      const listener = new ReleaseListener(
        listenerClientFactory(connection),
        [this.#inbox, this.#names.channel],
        (keyPayload, owner, handOver) => {
          // A plain announcement comes after any hand-over before it (notifications arrive in commit order):
          // one was a force release or a leave that took that grant away.
          if (handOver === undefined) this.#handOvers.withdrawn(keyPayload, owner)
          else this.#handOvers.heard(keyPayload, owner, handOver.mark, Number(handOver.token))
        },
      )
      this.#listener = listener
      this.subscribeToReleases = (key, onRelease) => listener.subscribe(releasePayload(key), onRelease)
    }
    this.#sharedSql = buildSharedStatements(this.#names)
    const listener = this.#listener
    this.shared = new PostgresSharedStore({
      statements: this.#sharedSql,
      channel: this.#names.channel,
      run: async (operation, key, query) => {
        const result = await this.#run(operation, key, query, () => this.#ensureSharedTable())
        this.#sharedInUse = true
        return result
      },
      hot: (statement, values) => this.#hot(statement, values),
      ...(listener && { subscribe: (payload, onRelease) => listener.subscribe(payload, onRelease) }),
    })
  }

  /** The table as configured, e.g. `verrou_locks` or `app.locks`. */
  get tableName(): string {
    return this.#names.display
  }

  async acquire(key: string, owner: string, ttl: number | null, wait?: WaitOptions): Promise<AcquireResult> {
    const placeLease = wait === undefined ? null : wait.lease
    // A waiter of a listening store may have been handed the lock: answered at once, claimed meanwhile.
    const payload = wait === undefined || this.#listener === undefined ? undefined : releasePayload(key)
    const sentAt = performance.now()
    if (payload !== undefined) {
      const handed = this.#handOvers.take(payload, owner, sentAt)
      if (handed !== undefined) {
        this.#queues.saw(key, sentAt)
        const claimed = this.#claim(key, owner, ttl, handed.token)
        // `Lock` always follows the claim; a caller of the store that does not must not crash the process.
        claimed.catch(() => {})
        return { acquired: true, fencingToken: handed.token, handedOver: { lease: handed.lease, claimed } }
      }
    }
    // A caller that would wait, on a key with no queue seen lately: the light statement takes a free key
    // that nobody waits for. Held, or with a queue, it changes nothing and the full statement decides.
    if (placeLease !== null && !this.#queues.has(key, sentAt)) {
      const free = await this.#run(
        'acquire',
        key,
        this.#hot(this.#sql.acquireFree, [toStoredBytes(key), toStoredBytes(owner), ttl]),
      )
      const granted = free.rows[0] as Pick<AcquireRow, 'fencing_token' | 'redraw'> | undefined
      if (granted !== undefined) {
        if (payload !== undefined) this.#handOvers.forget(payload, owner)
        return this.#granted(key, owner, granted)
      }
    }
    const result = await this.#run(
      'acquire',
      key,
      this.#hot(placeLease === null ? this.#sql.acquire : this.#sql.acquireWaiting, [
        toStoredBytes(key),
        toStoredBytes(owner),
        ttl,
        placeLease,
        this.#ownTransactions,
        this.#inbox,
      ]),
    )
    const row = result.rows[0] as AcquireRow | undefined
    // A refusal with a position: this caller holds a place in the key's queue, for its place lease.
    if (typeof row?.queue_position === 'number') this.#queues.saw(key, sentAt, placeLease ?? undefined)
    if (payload !== undefined) {
      if (row?.fencing_token === null && row.place_mark !== null) {
        this.#handOvers.placed(payload, owner, sentAt, placeLease as number, row.place_mark)
      } else {
        this.#handOvers.forget(payload, owner)
      }
    }
    if (row === undefined) return { acquired: false }
    if (row.redraw === true) return this.#granted(key, owner, row)
    return toAcquireResult({ token: row.fencing_token, expiresIn: row.expires_in, position: row.queue_position }, key, STORE_NAME)
  }

  /** The result of a grant, its token drawn again first when the statement says so (see `redraw` in sql.ts). */
  async #granted(key: string, owner: string, row: Pick<AcquireRow, 'fencing_token' | 'redraw'>): Promise<AcquireResult> {
    let token = row.fencing_token
    if (row.redraw === true) {
      const redrawn = await this.#run('acquire', key, this.#hot(this.#sql.redraw, [toStoredBytes(key), toStoredBytes(owner)]))
      token = (redrawn.rows[0] as { fencing_token: string } | undefined)?.fencing_token ?? null
    }
    return toAcquireResult({ token, expiresIn: null, position: null }, key, STORE_NAME)
  }

  /** Claims a lock handed to `owner` with `token` for `ttl` (see claim in sql.ts): whether it was still ours to claim. */
  async #claim(key: string, owner: string, ttl: number | null, token: number): Promise<boolean> {
    const claim = this.#hot(this.#sql.claim, [toStoredBytes(key), toStoredBytes(owner), ttl, token])
    const result = await this.#run('claim', key, claim)
    return result.rowCount === 1
  }

  async release(key: string, owner: string): Promise<boolean> {
    const sentAt = performance.now()
    // No queue seen lately: the light statement ends the lease if nobody waits. A queue, or a lease not
    // owner's, is left to the full release.
    if (!this.#queues.has(key, sentAt)) {
      const light = this.#hot(this.#sql.releaseUnqueued, [toStoredBytes(key), toStoredBytes(owner), this.#ownTransactions])
      if ((await this.#run('release', key, light)).rowCount === 1) return true
    }
    const result = await this.#run(
      'release',
      key,
      this.#hot(this.#sql.release, [
        toStoredBytes(key),
        toStoredBytes(owner),
        this.#names.channel,
        releasePayload(key),
        this.#ownTransactions,
      ]),
    )
    // Released by this statement: the key has a queue (the light one changed nothing), or had one lately.
    if (result.rowCount === 1) this.#queues.saw(key, sentAt)
    return result.rowCount === 1
  }

  async extend(key: string, owner: string, ttl: number | null): Promise<boolean> {
    const result = await this.#run('extend', key, this.#hot(this.#sql.extend, [toStoredBytes(key), toStoredBytes(owner), ttl]))
    return result.rowCount === 1
  }

  async forceRelease(key: string): Promise<void> {
    await this.#run(
      'force release',
      key,
      this.#hot(this.#sql.forceRelease, [toStoredBytes(key), this.#names.channel, releasePayload(key)]),
    )
  }

  async leaveQueue(key: string, owner: string): Promise<void> {
    if (this.#listener !== undefined) this.#handOvers.forget(releasePayload(key), owner)
    await this.#run(
      'leave the queue of',
      key,
      this.#hot(this.#sql.leaveQueue, [toStoredBytes(key), toStoredBytes(owner), this.#names.channel, releasePayload(key)]),
    )
  }

  async isLocked(key: string): Promise<boolean> {
    const result = await this.#run('check', key, this.#hot(this.#sql.isLocked, [toStoredBytes(key)]))
    return (result.rows[0] as { locked: boolean } | undefined)?.locked === true
  }

  /**
   * Deletes up to `pruneBatchSize` rows whose lease ended more than `pruneAfter` ago and returns how many
   * it deleted. Once this store has used shared locks, it also deletes up to as many `_shared` rows whose
   * every holding and place ended that long ago. Tokens are unaffected: they come from the table's
   * sequence, not from the rows.
   */
  async pruneExpired(): Promise<number> {
    const values = [this.#pruneAfter, this.#pruneBatchSize]
    const result = await this.#run('prune', undefined, { text: this.#sql.prune, values })
    const pruned = (result.rows[0] as { pruned: number } | undefined)?.pruned ?? 0
    if (!this.#sharedInUse) return pruned
    // Shared rows are deleted as they empty; these are the ones whose holders and waiters all died.
    const shared = await this.#run('prune', undefined, { text: this.#sharedSql.prune, values }, () => this.#ensureSharedTable())
    return pruned + (shared.rowCount ?? 0)
  }

  /** Stops housekeeping and listening for releases. Never ends the connection you passed in. */
  async close(): Promise<void> {
    this.#housekeeping?.stop()
    await this.#listener?.close()
  }

  /** A lock operation's query: named, so pg prepares it once per session, unless that is turned off. */
  #hot(statement: HotStatement, values: unknown[]): Query {
    return this.#preparedStatements ? { name: statement.name, text: statement.text, values } : { text: statement.text, values }
  }

  async #run(
    operation: string,
    key: string | undefined,
    query: Query,
    ensureTable: () => Promise<void> = () => this.#ensureTable(),
  ): Promise<QueryResult> {
    this.#housekeeping?.start()
    try {
      await ensureTable()
      return await retryingConflicts(() => this.#db.query(query))
    } catch (error) {
      if (error instanceof errors.VerrouError) throw error
      const what = key === undefined ? `${operation} table ${this.#names.display}` : operation
      const detail = isMissingQueueColumn(error) || isMissingPruneMark(error) ? this.#upgradeAdvice(error) : undefined
      throw errors.E_LOCK_STORAGE_ERROR.from(error, { operation: what, key, store: STORE_NAME, ...(detail && { detail }) })
    }
  }

  #ensureTable(): Promise<void> {
    if (!this.#autoCreateTable) return Promise.resolve()
    if (this.#ready === undefined) {
      const creating = this.#createTable().then(() => this.#upgradeTable())
      this.#ready = creating
      // A failure is not remembered: the next operation tries again (the server may be back by then).
      creating.catch(() => {
        if (this.#ready === creating) this.#ready = undefined
      })
    }
    return this.#ready
  }

  /** The shared locks' table, sequence and function, created on the first shared-lock operation. */
  #ensureSharedTable(): Promise<void> {
    if (!this.#autoCreateTable) return Promise.resolve()
    if (this.#sharedReady === undefined) {
      const creating = this.#createTable(true, this.#sharedSql.createTable, () => this.#sharedTableExists())
      this.#sharedReady = creating
      creating.catch(() => {
        if (this.#sharedReady === creating) this.#sharedReady = undefined
      })
    }
    return this.#sharedReady
  }

  async #sharedTableExists(): Promise<boolean> {
    const result = await this.#db.query({
      text: this.#sharedSql.tableExists,
      values: [this.#names.sharedTable, this.#names.sequence, this.#sharedSql.functionSignature],
    })
    return (result.rows[0] as { present: boolean } | undefined)?.present === true
  }

  async #createTable(mayRetry = true, ddl = this.#sql.createTable, exists = () => this.#tableExists()): Promise<void> {
    try {
      await this.#db.query({ text: ddl })
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code
      // Someone creating the same objects without our advisory lock (a migration, say) can still make the
      // catalogs' unique indexes object; the objects then exist, which is all we need.
      if (mayRetry && (code === '23505' || code === '42P07')) return this.#createTable(false, ddl, exists)
      // A role without CREATE on the schema is refused even when everything already exists: that is fine.
      // (For the shared table, so is one that does not own the function it would replace.)
      if (code === '42501' && (await exists())) return
      throw error
    }
  }

  /**
   * A table created by an earlier release lacks the wait queue's columns or the prune mark: they are added
   * (once, and only when missing, as ALTER TABLE locks the table for a moment). A role that may not alter
   * the table gets an error naming the statement to run.
   */
  async #upgradeTable(): Promise<void> {
    const result = await this.#db.query({ text: this.#sql.upgradeCheck, values: [this.#names.table, this.#names.pruneMark] })
    const found = result.rows[0] as { present: number; marked: boolean } | undefined
    if (found?.present === QUEUE_COLUMNS.length && found.marked) return
    try {
      await this.#db.query({ text: this.#sql.upgradeTable })
    } catch (error) {
      throw errors.E_LOCK_STORAGE_ERROR.from(error, {
        operation: `upgrade table ${this.#names.display}`,
        store: STORE_NAME,
        detail: this.#upgradeAdvice(error),
      })
    }
  }

  #upgradeAdvice(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error)
    return `${message}. The table lacks the wait queue's columns or the prune mark sequence (it was created by an earlier release of @verrou/postgres); run as its owner:\n${upgradeTableSql(this.#names, { guarded: false })}`
  }

  async #tableExists(): Promise<boolean> {
    const result = await this.#db.query({ text: this.#sql.tableExists, values: [this.#names.table, this.#names.sequence] })
    return (result.rows[0] as { present: boolean } | undefined)?.present === true
  }
}

/** Creates a PostgreSQL store for Verrou on a `pg` Pool or Client you own. */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options)
}

/** 42703 undefined_column on one of the queue's columns: the table predates the wait queue. */
function isMissingQueueColumn(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  return code === '42703' && typeof message === 'string' && QUEUE_COLUMNS.some((column) => message.includes(column))
}

/** 42P01 undefined_table naming the prune mark: the table predates it. */
function isMissingPruneMark(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  return code === '42P01' && typeof message === 'string' && message.includes(PRUNE_MARK_SUFFIX)
}

function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new errors.E_INVALID_ARGUMENT(`${name} must be a boolean, got ${String(value)}`)
  return value
}

function wholeNumberOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new errors.E_INVALID_ARGUMENT(`${name} must be a whole number of milliseconds (0 or more), got ${String(value)}`)
  }
  return value
}
