import { NOW_MS, PRUNE_BATCH } from './sql.js'

/** How long an empty row created for a first acquire is kept from pruning, in ms. */
const EMPTY_ROW_GRACE_MS = 10_000

/** The statements of shared keys (semaphores, read-write locks), on their own table. */
export interface SharedStatements {
  createTable: string
  /**
   * Params: keyHash. Always one row: `found` (0 or 1), the row's state and token, and the server's clock. The
   * aggregate makes a missing row still report the clock; FOR UPDATE holds the row until the transaction ends.
   */
  selectForUpdate: string
  /**
   * Params: keyHash. As `selectForUpdate` (always one row), without locking: isLocked, and the optimistic
   * first attempt.
   */
  selectPlain: string
  /**
   * Params: keyHash, key, state, endsAt. A first grant on a key with no row: its token is the floor plus one
   * (read with a shared lock, so that pruning cannot slip between), reported as the insert id. A row inserted
   * meanwhile by another session makes it fail with a duplicate key, changing nothing.
   */
  insertGranted: string
  /** Params: state, token, endsAt, keyHash, version. Writes only if nobody wrote since `version` was read. */
  updateIfUnchanged: string
  /**
   * Params: keyHash, key. Creates an empty row if none exists, its counter at the floor (read with a shared
   * lock, so that pruning cannot slip between); an existing row is left as it is. The row becomes prunable
   * only after a grace, so that housekeeping does not delete it before its creator's transaction locks it;
   * the creator's write sets its real end.
   */
  insertEmpty: string
  /** Params: state, token, endsAt, keyHash. */
  update: string
  /** Rows with no live holder and no live place, oldest first. */
  selectEnded: string
  /** Params: PRUNE_BATCH key hashes, then the floor they were covered by. */
  deleteEnded: string
}

export function sharedStatements(table: string, floor: string): SharedStatements {
  const ended = `ends_at <= ${NOW_MS}`
  return {
    createTable: [
      `CREATE TABLE IF NOT EXISTS ${table} (`,
      '  key_hash BINARY(32) NOT NULL,',
      '  lock_key LONGBLOB NOT NULL,',
      '  state LONGBLOB NOT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  ends_at BIGINT NULL,',
      // Bumped by every write: the optimistic path writes only over the version it read.
      '  version BIGINT NOT NULL DEFAULT 0,',
      '  PRIMARY KEY (key_hash),',
      '  KEY ended_states (ends_at, fencing_token)',
      ') ENGINE=InnoDB',
    ].join('\n'),
    selectForUpdate: [
      'SELECT COUNT(*) AS found, MAX(state) AS state, MAX(fencing_token) AS fencing_token,',
      `${NOW_MS} AS now_ms FROM ${table} WHERE key_hash = ? FOR UPDATE`,
    ].join(' '),
    selectPlain: [
      'SELECT COUNT(*) AS found, MAX(state) AS state, MAX(fencing_token) AS fencing_token, MAX(version) AS version,',
      `${NOW_MS} AS now_ms FROM ${table} WHERE key_hash = ?`,
    ].join(' '),
    insertGranted: [
      `INSERT INTO ${table} (key_hash, lock_key, state, fencing_token, ends_at, version)`,
      `VALUES (?, ?, ?, LAST_INSERT_ID((SELECT fencing_token FROM ${floor} WHERE id = 1 LOCK IN SHARE MODE) + 1), CAST(? AS SIGNED), 0)`,
    ].join(' '),
    updateIfUnchanged: [
      `UPDATE ${table} SET state = ?, fencing_token = CAST(? AS SIGNED), ends_at = CAST(? AS SIGNED), version = version + 1`,
      'WHERE key_hash = ? AND version = CAST(? AS SIGNED)',
    ].join(' '),
    insertEmpty: [
      `INSERT INTO ${table} (key_hash, lock_key, state, fencing_token, ends_at)`,
      `VALUES (?, ?, '{"h":[],"q":[]}', (SELECT fencing_token FROM ${floor} WHERE id = 1 LOCK IN SHARE MODE), ${NOW_MS} + ${EMPTY_ROW_GRACE_MS})`,
      'ON DUPLICATE KEY UPDATE key_hash = key_hash',
    ].join(' '),
    update: [
      `UPDATE ${table} SET state = ?, fencing_token = CAST(? AS SIGNED), ends_at = CAST(? AS SIGNED), version = version + 1`,
      'WHERE key_hash = ?',
    ].join(' '),
    selectEnded: `SELECT key_hash, fencing_token FROM ${table} WHERE ${ended} ORDER BY ends_at LIMIT ${PRUNE_BATCH}`,
    deleteEnded: [
      `DELETE FROM ${table} WHERE key_hash IN (${Array.from({ length: PRUNE_BATCH }, () => '?').join(', ')})`,
      `AND ${ended} AND fencing_token <= CAST(? AS SIGNED)`,
    ].join(' '),
  }
}
