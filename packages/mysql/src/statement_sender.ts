import type { Connection, Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import type { ConnectionGate } from './connection_gate.js'

export type StatementParams = Array<Buffer | number | string | null>
export type StatementResult = ResultSetHeader | RowDataPacket[]

/** The callback method behind mysql2's promise `execute`, on its Pool and Connection alike. */
type CallbackExecute = (
  sql: string,
  params: StatementParams,
  callback: (error: unknown, result: StatementResult) => void,
) => unknown

/**
 * Sends the store's statements outside transactions: prepared ones (`execute`) and the few plain ones its
 * table set-up needs (`query`), one at a time through `gate` on a lone connection, so that none lands in a
 * shared-lock transaction open on it.
 *
 * Given mysql2's own promise Pool or Connection, it calls the callback object the wrapper holds (`pool.pool`,
 * `connection.connection`, both in mysql2's public types). Why: the promise wrapper captures a stack trace
 * on every call (its `trace` option, on by default), which cost about 13 µs of CPU per statement on the
 * bench machine, 4% of an uncontended acquire + release. The store reports every failure as its own
 * E_LOCK_STORAGE_ERROR, whose stack shows the caller, with the driver's error as `cause`.
 * A Pool or Connection whose `execute` was replaced on the object itself (instrumentation, a test double)
 * is called as given, so that what it wraps still sees every statement.
 */
export class StatementSender {
  readonly #db: Pool | Connection
  readonly #gate: ConnectionGate | undefined
  readonly #callbackTarget: { execute: CallbackExecute } | undefined

  constructor(db: Pool | Connection, gate: ConnectionGate | undefined) {
    this.#db = db
    this.#gate = gate
    this.#callbackTarget = callbackTarget(db)
  }

  execute<T extends StatementResult>(sql: string, params: StatementParams): Promise<T> {
    if (this.#gate === undefined) return this.#send<T>(sql, params)
    return this.#gate.run(() => this.#send<T>(sql, params))
  }

  /** A statement without parameters, through the promise wrapper: table set-up, once per store. */
  query(sql: string): Promise<unknown> {
    if (this.#gate === undefined) return this.#db.query(sql)
    return this.#gate.run(() => this.#db.query(sql))
  }

  #send<T extends StatementResult>(sql: string, params: StatementParams): Promise<T> {
    const target = this.#callbackTarget
    if (target === undefined) return this.#db.execute<T>(sql, params).then(([result]) => result)
    return new Promise<T>((resolve, reject) => {
      target.execute(sql, params, (error, result) => (error ? reject(error) : resolve(result as T)))
    })
  }
}

/** The callback object inside mysql2's promise wrapper, unless `execute` was replaced on the wrapper itself. */
function callbackTarget(db: Pool | Connection): { execute: CallbackExecute } | undefined {
  if (Object.hasOwn(db, 'execute')) return undefined
  const inner = (db as { pool?: unknown }).pool ?? (db as { connection?: unknown }).connection
  if (typeof inner !== 'object' || inner === null) return undefined
  const execute = (inner as { execute?: unknown }).execute
  return typeof execute === 'function' ? (inner as { execute: CallbackExecute }) : undefined
}
