import type { AcquireResult } from '@verrou/core'
import type { LockTables } from './table_name.js'

/**
 * The server's clock in epoch milliseconds, independent of the session's time_zone (no DST ambiguity).
 * Constant within one statement, so every comparison in a statement sees the same instant.
 */
const NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000)"

/**
 * The OK packet carries one integer back to us: LAST_INSERT_ID. An acquire puts the fencing token there
 * when it takes the lock, or this base plus the holder's remaining milliseconds when it does not, so a
 * refused acquire still learns `expiresIn` in its single round trip. Tokens stay below it (the table's
 * CHECK constraint refuses larger ones, which would take 142 years at a million acquisitions a second).
 */
export const REFUSED_BASE = 2 ** 52

/**
 * The most a refused acquire reports as `expiresIn`: REFUSED_BASE plus it is the largest safe integer, so
 * the OK packet's value still reads exactly. A longer lease (the contract accepts up to 2^53-1 ms) is
 * reported as this: about 142,800 years, as good as "for ever" to a waiter.
 */
export const MAX_REPORTED_EXPIRES_IN = Number.MAX_SAFE_INTEGER - REFUSED_BASE

/** Rows pruned per batch: small enough that a batch holds its row locks only briefly. */
export const PRUNE_BATCH = 200

export interface LockStatements {
  createLockTable: string
  createFloorTable: string
  seedFloor: string
  /** Params: keyHash, keyBytes, owner, ttl, owner, ttl. Result: see `readAcquire`. */
  acquire: string
  /** Params: keyHash, owner. One affected row when released. */
  release: string
  /** Params: ttl, keyHash, owner. `insertId` is the token when extended, 0 otherwise. */
  extend: string
  /** Params: keyHash. */
  forceRelease: string
  /** Params: keyHash. A row when locked. */
  isLocked: string
  /** Rows whose lease has ended (released or expired), oldest first. */
  selectEnded: string
  /** Params: token, token. */
  raiseFloor: string
  /** Params: PRUNE_BATCH key hashes, then the floor they were covered by. */
  deleteEnded: string
}

export function lockStatements({ locks, floor }: LockTables): LockStatements {
  // An ended lease: expired, or released (release stores the release time). NULL never expires.
  const ended = `expires_at <= ${NOW_MS}`
  const live = `(expires_at IS NULL OR expires_at > ${NOW_MS})`
  const newExpiry = `${NOW_MS} + CAST(? AS SIGNED)`
  return {
    createLockTable: [
      `CREATE TABLE IF NOT EXISTS ${locks} (`,
      '  key_hash BINARY(32) NOT NULL,',
      '  lock_key LONGBLOB NOT NULL,',
      '  lock_owner LONGBLOB NULL,',
      '  expires_at BIGINT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  PRIMARY KEY (key_hash),',
      '  KEY ended_leases (expires_at, fencing_token),',
      `  CHECK (fencing_token BETWEEN 1 AND ${REFUSED_BASE - 1})`,
      ') ENGINE=InnoDB',
    ].join('\n'),
    createFloorTable: [
      `CREATE TABLE IF NOT EXISTS ${floor} (`,
      '  id TINYINT NOT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  PRIMARY KEY (id)',
      ') ENGINE=InnoDB',
    ].join('\n'),
    seedFloor: `INSERT INTO ${floor} (id, fencing_token) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id`,
    // One statement: insert the row, or take over an ended one. The ON DUPLICATE KEY UPDATE assignments run
    // left to right and later ones see earlier results, so `expires_at`, which every condition reads, is
    // assigned last. The floor is read with a shared lock so pruning cannot delete a row between that read
    // and the insert that replaces it.
    acquire: [
      `INSERT INTO ${locks} (key_hash, lock_key, lock_owner, expires_at, fencing_token)`,
      `VALUES (?, ?, ?, ${newExpiry}, LAST_INSERT_ID((SELECT fencing_token FROM ${floor} WHERE id = 1 LOCK IN SHARE MODE) + 1))`,
      'ON DUPLICATE KEY UPDATE',
      `  fencing_token = IF(${ended}, LAST_INSERT_ID(fencing_token + 1),`,
      // Refused: the token is unchanged; LAST_INSERT_ID is called only to report the time left.
      `    fencing_token + 0 * LAST_INSERT_ID(IFNULL(LEAST(expires_at - ${NOW_MS}, ${MAX_REPORTED_EXPIRES_IN}) + ${REFUSED_BASE}, 0))),`,
      `  lock_owner = IF(${ended}, ?, lock_owner),`,
      `  expires_at = IF(${ended}, ${newExpiry}, expires_at)`,
    ].join('\n'),
    release: `UPDATE ${locks} SET lock_owner = NULL, expires_at = ${NOW_MS} WHERE key_hash = ? AND lock_owner = ? AND ${live}`,
    // LAST_INSERT_ID reports a match even when the new expiry equals the old one (a row that did not change
    // counts as unaffected when the client did not ask for found rows).
    extend: [
      `UPDATE ${locks} SET expires_at = ${newExpiry}, fencing_token = LAST_INSERT_ID(fencing_token)`,
      `WHERE key_hash = ? AND lock_owner = ? AND ${live}`,
    ].join(' '),
    forceRelease: `UPDATE ${locks} SET lock_owner = NULL, expires_at = ${NOW_MS} WHERE key_hash = ? AND ${live}`,
    isLocked: `SELECT 1 AS locked FROM ${locks} WHERE key_hash = ? AND ${live}`,
    selectEnded: `SELECT key_hash, fencing_token FROM ${locks} WHERE ${ended} ORDER BY expires_at LIMIT ${PRUNE_BATCH}`,
    raiseFloor: [
      `INSERT INTO ${floor} (id, fencing_token) VALUES (1, CAST(? AS SIGNED))`,
      'ON DUPLICATE KEY UPDATE fencing_token = GREATEST(fencing_token, CAST(? AS SIGNED))',
    ].join(' '),
    deleteEnded: [
      `DELETE FROM ${locks} WHERE key_hash IN (${Array.from({ length: PRUNE_BATCH }, () => '?').join(', ')})`,
      `AND ${ended} AND fencing_token <= CAST(? AS SIGNED)`,
    ].join(' '),
  }
}

/** Decodes what the acquire statement reported through LAST_INSERT_ID (see `REFUSED_BASE`). */
export function readAcquire(insertId: number): AcquireResult {
  if (!Number.isSafeInteger(insertId) || insertId < 0) {
    throw new Error(`unexpected insertId ${String(insertId)} from the acquire statement`)
  }
  if (insertId === 0) return { acquired: false }
  if (insertId >= REFUSED_BASE) return { acquired: false, expiresIn: insertId - REFUSED_BASE }
  return { acquired: true, fencingToken: insertId }
}
