import pg, { type Client, type ClientConfig, type Pool, type QueryResult } from 'pg'

/** What the store is given: a pool or a client the user owns (a checked-out PoolClient is a Client). */
export type PostgresConnection = Pool | Client

/** The one thing the store's lock operations need from a connection. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<QueryResult>
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
  if (isPool(connection)) return { query: (text, values) => connection.query(text, values) }
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
    query(text, values) {
      const result = tail.then(() => client.query(text, values))
      tail = result.catch(() => undefined)
      return result
    },
  }
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
