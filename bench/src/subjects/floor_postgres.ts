import type { PgPool } from '../backends/pg.js'
import { type ConnectOptions, type Counters, LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'

/** The floor's table: key, owner, lease end. Created by the backend before anything is measured. */
export function postgresFloorTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (key text PRIMARY KEY, owner text NOT NULL, expires_at timestamptz NOT NULL)`
}

/**
 * pg by hand: one upsert that takes the row only if its lease ended (server clock), one owner-checked
 * DELETE. Plain parameterised queries, as our store sends.
 */
export function postgresFloorSubject(connect: (counters: Counters, options?: ConnectOptions) => PgPool, table: string): Subject {
  const acquire = `INSERT INTO ${table} AS held (key, owner, expires_at)
VALUES ($1, $2, clock_timestamp() + $3::float8 * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE held.expires_at <= clock_timestamp()`
  const release = `DELETE FROM ${table} WHERE key = $1 AND owner = $2 AND expires_at > clock_timestamp()`
  return {
    id: 'postgres/floor',
    store: 'postgres',
    label: 'raw floor (pg)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(counters, options) {
      const pool = connect(counters, options)
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          return (await pool.query(acquire, [key, owner, LEASE_MS])).rowCount === 1
        },
        async release(key, owner) {
          return (await pool.query(release, [key, owner])).rowCount === 1
        },
        close: () => pool.end(),
      })
    },
  }
}
