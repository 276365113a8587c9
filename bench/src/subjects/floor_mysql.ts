import type { Pool, ResultSetHeader } from 'mysql2/promise'
import { type ConnectOptions, type Counters, LEASE_MS, type Subject } from '../subject.js'
import { pollingClient } from './floor_polling.js'

/** The server's clock in epoch ms; constant within a statement. */
const NOW_MS = 'CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)'

export function mysqlFloorTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (lock_key VARBINARY(255) NOT NULL PRIMARY KEY, owner VARBINARY(64) NOT NULL, expires_at BIGINT NOT NULL) ENGINE=InnoDB`
}

/**
 * mysql2 by hand: one INSERT ... ON DUPLICATE KEY UPDATE that takes the row only if its lease ended
 * (server clock), one owner-checked DELETE, both prepared (`execute`) as our store sends them. The pool must
 * be opened without FOUND_ROWS, so that an unchanged row reports 0 affected rows (1: inserted, 2: taken over).
 */
export function mysqlFloorSubject(connect: (counters: Counters, options?: ConnectOptions) => Pool, table: string): Subject {
  const ended = `expires_at <= ${NOW_MS}`
  // `owner` is assigned before `expires_at`, so both conditions still read the old lease end.
  const acquire = `INSERT INTO ${table} (lock_key, owner, expires_at) VALUES (?, ?, ${NOW_MS} + ?)
ON DUPLICATE KEY UPDATE owner = IF(${ended}, ?, owner), expires_at = IF(${ended}, ${NOW_MS} + ?, expires_at)`
  const release = `DELETE FROM ${table} WHERE lock_key = ? AND owner = ? AND expires_at > ${NOW_MS}`
  return {
    id: 'mysql/floor',
    store: 'mysql',
    label: 'raw floor (mysql2)',
    role: 'floor',
    cycles: true,
    contention: true,
    async connect(counters, options) {
      const pool = connect(counters, options)
      return pollingClient(options, {
        async tryAcquire(key, owner) {
          const [header] = await pool.execute<ResultSetHeader>(acquire, [key, owner, LEASE_MS, owner, LEASE_MS])
          return header.affectedRows > 0
        },
        async release(key, owner) {
          const [header] = await pool.execute<ResultSetHeader>(release, [key, owner])
          return header.affectedRows === 1
        },
        close: () => pool.end(),
      })
    },
  }
}
