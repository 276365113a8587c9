import pg, { type Client, type ClientConfig, type Pool, type QueryResult } from 'pg'
import { quoteIdentifier } from './table_name.js'

/** What the store is given: a pool or a client the user owns (a checked-out PoolClient is a Client). */
export type PostgresConnection = Pool | Client

/** A statement as pg's query config: with a `name`, pg prepares it once per session and reuses it. */
export interface Query {
  readonly text: string
  readonly values?: unknown[]
  readonly name?: string
}

/** The one thing the store's lock operations need from a connection. */
export interface Queryable {
  query(query: Query): Promise<QueryResult>
}

/** Listening needs a session of its own; the store opens it with the same settings as the user's. */
const DEFAULT_LISTENER_CONNECT_TIMEOUT_MS = 5000

export function isPool(connection: PostgresConnection): connection is Pool {
  // Duck-typed: the user's pg may be another copy than the one this package resolves.
  return 'idleCount' in connection && 'totalCount' in connection
}

/** One queue per client, shared by every store on it. */
const clientQueues = new WeakMap<Client, Queryable>()

export function toQueryable(connection: PostgresConnection): Queryable {
  // A pool needs no help with named statements: pg-pool discards a client whose query failed, so a session
  // whose prepared statement went bad (see forgetBrokenStatement) is replaced, and the next call prepares
  // the statement afresh on another one.
  if (isPool(connection)) return { query: (query) => connection.query(query) }
  let queue = clientQueues.get(connection)
  if (queue === undefined) {
    queue = serialQueries(connection)
    clientQueues.set(connection, queue)
  }
  return queue
}

/**
 * A single Client runs one query at a time anyway; handing it the next only when the last settled avoids
 * pg's deprecated implicit queue (and its warning) without changing what runs when.
 */
function serialQueries(client: Client): Queryable {
  let tail: Promise<unknown> = Promise.resolve()
  return {
    query(query) {
      const result = tail.then(() =>
        client.query(query).catch(async (error: unknown) => {
          if (query.name !== undefined) await forgetBrokenStatement(client, query.name, error)
          throw error
        }),
      )
      tail = result.catch(() => undefined)
      return result
    },
  }
}

/**
 * pg remembers, per client, which names it has prepared and from then on only binds them. A single client
 * is not discarded on error the way a pool's are, so when the server's copy went bad, pg must be made to
 * prepare it again or every later call fails the same way. Both errors are raised before the statement
 * runs: the failed call did nothing, and the caller reports it as a storage error.
 * - 26000: the session no longer has the statement (`DEALLOCATE ALL` or `DISCARD ALL` was run on it).
 * - 0A000 'cached plan must not change result type': the tables changed under the plan so that its result
 *   columns would differ (our statements cast every output, so this is defensive). The server keeps the
 *   broken statement, so it is deallocated first.
 * Dropping and recreating the table needs none of this: PostgreSQL re-plans a prepared statement whose
 * tables changed, so it fails (42P01) while the table is missing and works again once it is back.
 */
async function forgetBrokenStatement(client: Client, name: string, error: unknown): Promise<void> {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  const changed = code === '0A000' && typeof message === 'string' && message.includes('cached plan')
  if (code !== '26000' && !changed) return
  if (changed) await client.query(`DEALLOCATE ${quoteIdentifier(name)}`).catch(() => undefined)
  // Duck-typed: pg keeps this map on the client's connection (the user's pg may be another copy).
  const parsed = (client as { connection?: { parsedStatements?: unknown } }).connection?.parsedStatements
  if (typeof parsed === 'object' && parsed !== null) delete (parsed as Record<string, unknown>)[name]
}

/**
 * Creates, unconnected, the dedicated client that LISTENs for releases: built the way the pool builds its
 * own clients (same class, same options, password included), or from the user's client's connection
 * parameters. It never takes a slot of the user's pool, so `pool.end()` is never held up by it.
 */
export function listenerClientFactory(connection: PostgresConnection): () => Client {
  return () => {
    const source = isPool(connection) ? connection.options : connectionParametersOf(connection)
    // Copy with descriptors: pg hides the password as a non-enumerable property, which a spread would drop.
    const config: ClientConfig = Object.defineProperties({}, Object.getOwnPropertyDescriptors(source))
    config.connectionTimeoutMillis ||= DEFAULT_LISTENER_CONNECT_TIMEOUT_MS
    config.keepAlive = true
    const ClientClass = (isPool(connection) && poolClientClass(connection)) || pg.Client
    return new ClientClass(config)
  }
}

function poolClientClass(pool: Pool): (new (config: ClientConfig) => Client) | undefined {
  const candidate: unknown = (pool as { Client?: unknown }).Client
  return typeof candidate === 'function' ? (candidate as new (config: ClientConfig) => Client) : undefined
}

function connectionParametersOf(client: Client): object {
  // pg keeps the parsed settings (connection string, env variables and defaults resolved) here.
  const parameters: unknown = (client as { connectionParameters?: unknown }).connectionParameters
  if (typeof parameters === 'object' && parameters !== null) return parameters
  return { host: client.host, port: client.port, user: client.user, database: client.database, password: client.password }
}

/**
 * Whether the user ended the pool or client (`end()`): background work on it then stops. Duck-typed, as
 * the user's pg may be another copy: pg-pool's `ending`, and pg Client's `_ending`.
 */
export function connectionEnded(connection: PostgresConnection): boolean {
  const flags = connection as { ending?: unknown; _ending?: unknown }
  return isPool(connection) ? flags.ending === true : flags._ending === true
}
