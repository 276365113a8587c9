import { randomBytes } from 'node:crypto'
import { postgresConfig } from '@verrou/test-utils/connection-settings'
import pg from 'pg'

/**
 * Where the tests find PostgreSQL: POSTGRES_URL if set, else the standard PG* variables, defaulting to
 * the local server (127.0.0.1:5432, user postgres, database test, trust auth).
 */
export const connectionConfig: () => pg.ClientConfig = postgresConfig

/** A pool for one test file; `application_name` lets tests find its sessions in pg_stat_activity. */
export function createPool(options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ ...connectionConfig(), max: 10, connectionTimeoutMillis: 5000, ...options })
  // An idle session killed by a test must not crash the run: the pool drops it and opens another.
  pool.on('error', () => undefined)
  return pool
}

export async function createClient(options: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...connectionConfig(), connectionTimeoutMillis: 5000, ...options })
  client.on('error', () => undefined)
  await client.connect()
  return client
}

/** A fresh table name per test, so parallel and repeated runs never share state. */
export function uniqueTableName(prefix = 'verrou_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

export function uniqueKey(label = 'key'): string {
  return `${label}:${randomBytes(8).toString('hex')}`
}

/** Drops a test table and its sequences, and the shared locks' table and function if they were created. */
export async function dropTable(admin: pg.Client | pg.Pool, tableName: string): Promise<void> {
  const [schema, table] = tableName.includes('.') ? tableName.split('.') : [undefined, tableName]
  const prefix = schema ? `"${schema}".` : ''
  await admin.query(`DROP TABLE IF EXISTS ${prefix}"${table}"; DROP SEQUENCE IF EXISTS ${prefix}"${table}_fencing_seq", ${prefix}"${table}_prune_seq";
    DROP TABLE IF EXISTS ${prefix}"${table}_shared"; DROP FUNCTION IF EXISTS ${prefix}"${table}_shared_v1"`)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
