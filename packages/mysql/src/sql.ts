import type { AcquireResult } from '@verrou/core'
import type { LockTables } from './table_name.js'

/**
 * The server's clock in epoch milliseconds, independent of the session's time_zone (no DST ambiguity).
 * Constant within one statement, so every comparison in a statement sees the same instant.
 */
export const NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000)"

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
 * reported as this: about 142,800 years, as good as "for ever" to a waiter. The value above is QUEUE_PRESENT_CODE.
 */
export const MAX_REPORTED_EXPIRES_IN = Number.MAX_SAFE_INTEGER - REFUSED_BASE - 1

/**
 * What the plain acquire statement reports, changing nothing, when the row has a wait queue or a caller
 * with `wait` must take a place: the queue statement decides then.
 */
export const QUEUE_PRESENT_CODE = Number.MAX_SAFE_INTEGER
/** `readAcquire`'s answer for QUEUE_PRESENT_CODE: ask the queue statement. */
export const QUEUE_PRESENT: unique symbol = Symbol('queue present')

/** Rows pruned per batch: small enough that a batch holds its row locks only briefly. */
export const PRUNE_BATCH = 200

/** Rows a prune reads per page, walking the primary key: the table has no index on lease ends to keep up. */
export const SCAN_PAGE = 1000

/**
 * A row whose lease ended is kept at least this long (server clock) before pruning may delete it, so a store
 * that touched the row less than `ROW_HINT_MS` ago can count on it and skip the floor read (see
 * `acquireExisting`).
 */
export const ROW_KEPT_MS = 2000
/** How long after sending an operation that found (or left) a row the store assumes the row is there. */
export const ROW_HINT_MS = ROW_KEPT_MS / 2

/**
 * The wait queue lives in the lock's own row (`wait_queue`), so the row lock every statement takes on it
 * serialises each decision about the queue with the decision about the lock. It is ASCII text made of
 * fixed-size places, each `"<owner id><lease end>",`: the owner id is the SHA-256 of the owner's bytes in
 * lowercase hex (64 characters), the lease end is epoch milliseconds on the server's clock, zero-padded to
 * 16 digits. Fixed sizes let plain string functions find, renew and cut places by offset; dropping the
 * trailing comma and adding brackets makes it a JSON array, which JSON_TABLE walks to count live places.
 */
export const PLACE_BYTES = 83
const OWNER_ID_CHARS = 64
const LEASE_END_DIGITS = 16
/** The largest lease end the 16 digits hold; now plus any lease the contract accepts (2^53-1) stays below. */
const MAX_LEASE_END = '9999999999999999'

/**
 * A refused acquire with `wait` reports its position and the holder's remaining lease together:
 * REFUSED_BASE + position * 2^32 + milliseconds left. Milliseconds that do not fit (2^32-1 and more, over
 * 49 days), or an unknown remainder, read as 0 (`expiresIn` undefined); positions that do not fit read as
 * unknown. The sum stays below QUEUE_PRESENT_CODE.
 */
export const POSITION_UNIT = 2 ** 32
export const MAX_REPORTED_POSITION = 2 ** 20 - 1

/** The SQL of one statement and the names of its parameters, in the order the placeholders appear. */
export interface Statement {
  sql: string
  params: readonly Param[]
}

export type Param = 'keyHash' | 'key' | 'owner' | 'ownerId' | 'ttl' | 'lease' | 'token'

/** Replaces `{name}` placeholders by `?` and records their order, so a value used many times is named once. */
function statement(template: string): Statement {
  const params: Param[] = []
  const sql = template.replace(/\{(keyHash|key|owner|ownerId|ttl|lease|token)\}/g, (_, name: Param) => {
    params.push(name)
    return '?'
  })
  return { sql, params }
}

export interface LockStatements {
  createLockTable: string
  /** Adds the wait-queue columns to a lock table created by a release before queues. */
  upgradeLockTable: string
  /** Fails with ER_BAD_FIELD_ERROR on a lock table that lacks the wait-queue columns. */
  probeLockTable: string
  createFloorTable: string
  seedFloor: string
  /**
   * Decides alone when the row has no wait queue and the caller takes no place, as on every uncontended
   * path; otherwise changes nothing and reports QUEUE_PRESENT_CODE. It neither reads the queue with a
   * subquery nor writes it, which would cost on every run even when not needed. Result: see `readAcquire`.
   */
  acquire: Statement
  /**
   * `acquire` for a key whose row is known to exist: an UPDATE with the same assignments, so it never reads
   * the floor table (an INSERT computes its VALUES, floor read included, even when the row exists). Result:
   * see `readExisting`.
   */
  acquireExisting: Statement
  /** Decides with or without a queue. Result: see `readAcquire`. */
  acquireQueued: Statement
  /**
   * The head's attempt: `acquireQueued`'s decision for a caller whose live place opens the queue (nothing
   * before it, dead or alive), made without walking the queue. Otherwise it changes nothing but an ended
   * lease's owner (as `acquireQueued` would) and reports QUEUE_PRESENT_CODE: `acquireQueued` decides. An
   * UPDATE, as the caller's place keeps the row: no row reads as 0. Result: see `readExisting`.
   */
  acquireAtFront: Statement
  /**
   * A waiter's poll that changes nothing and takes no lock: one row (none when the key has no row) of
   * `free` (the queue statement would grant now), `placed` (the caller's place is live), `position` and
   * `expires_in` as a refusal reports them, `handed` (a release handed the lock to the caller, live) and
   * `fencing_token`. See `readPeek`.
   */
  peekQueued: Statement
  /**
   * `peekQueued` for the head: the same columns, decided from the first place alone, without walking the
   * queue. `placed` is 1 only while the caller's live place opens the queue (`position` is then 0); 0 when
   * it does not (a dead place before it, or no place), and the caller's statements then decide.
   */
  peekAtFront: Statement
  /** Removes `ownerId`'s place, if it has one, and gives back a lock handed to it that it never claimed. */
  leaveQueue: Statement
  /**
   * Ends the caller's lease, held or handed to it. When the first place of the queue is live (and not the
   * caller's own), the lock goes straight to that waiter in the same statement: the next token, an owner
   * that names it by its id (see `handedTo`) and a lease that ends with its place's, which leaves the queue.
   * One affected row when released.
   */
  release: Statement
  /**
   * `release` for a key without a queue: ends the caller's lease only if nobody waits, writing two columns
   * and evaluating no hand-over. No affected row: not the caller's, or a queue stands (`release` decides).
   */
  releaseUnqueued: Statement
  /**
   * Turns a lock handed to `ownerId` (with `token`, still live) into an ordinary lease of `ttl` for `owner`,
   * and drops any place of the caller's (one it took while the hand-over was under way). `insertId` is the
   * token when claimed, 0 otherwise.
   */
  claim: Statement
  /** `insertId` is the token when extended, 0 otherwise. Claims a lock handed to the caller. */
  extend: Statement
  /** Params: keyHash. */
  forceRelease: string
  /** Params: keyHash. A row when locked. */
  isLocked: string
  /**
   * Params: the last key hash of the previous page (an empty buffer first). The next `SCAN_PAGE` rows in
   * primary-key order, each with whether it may be pruned: its lease ended `ROW_KEPT_MS` ago or more and its
   * queue has no live place.
   */
  scanPage: string
  /** Params: token, token. */
  raiseFloor: string
  /** Params: PRUNE_BATCH key hashes, then the floor they were covered by. */
  deleteEnded: string
}

export function lockStatements({ locks, floor }: LockTables): LockStatements {
  // An ended lease: expired, or released (release stores the release time). NULL never expires.
  const ended = `expires_at <= ${NOW_MS}`
  const live = `(expires_at IS NULL OR expires_at > ${NOW_MS})`
  // A grant `decision` (read from the row as it was), for the last assignment, which may see the others'
  // results: by default MySQL and MariaDB run the assignments left to right and each sees the results before
  // it, so lock_owner (the caller when granted, NULL when an ended lease was refused) already says; under
  // MariaDB's SIMULTANEOUS_ASSIGNMENT every one sees the row as it was, so the decision is made again from it.
  const lastAssignment = (decision: string) =>
    `IF(@@SESSION.sql_mode LIKE '%SIMULTANEOUS_ASSIGNMENT%', ${decision}, COALESCE(${ended} AND lock_owner IS NOT NULL, FALSE))`
  // A row may go once it has been ended a while (so a store's recent sight of it stays true) and no place in
  // its queue can be alive: queue_ends_at is never below any place's end.
  const prunable = `expires_at <= ${NOW_MS} - ${ROW_KEPT_MS} AND (wait_queue IS NULL OR queue_ends_at <= ${NOW_MS})`

  // A lock a release handed to a waiter names it by its place's id behind a 0xFF byte, which no UTF-8 text
  // (every owner, see key_bytes.ts) contains: the waiter's own owner bytes are not in the queue.
  const handedTo = (id: string) => `CONCAT(x'FF', ${id})`
  const handedMine = `COALESCE(lock_owner = ${handedTo('{ownerId}')} AND ${live}, FALSE)`
  // The caller's lease: held under its owner bytes, or handed to it and not claimed yet.
  const ownsLease = `lock_owner IN ({owner}, ${handedTo('SHA2({owner}, 256)')}) AND ${live}`

  // The owner's place: the 1-based offset of its opening quote, 0 when it has none. A quote followed by 64
  // hex digits only ever starts a place (a closing quote is followed by a comma), so a match is aligned.
  const own = `LOCATE(CONCAT('"', {ownerId}), wait_queue)`
  const ownEnd = `CAST(SUBSTRING(wait_queue, ${own} + ${OWNER_ID_CHARS + 1}, ${LEASE_END_DIGITS}) AS UNSIGNED)`
  const ownLive = `(${own} > 0 AND ${ownEnd} > ${NOW_MS})`
  // Live places ahead of the owner's live place, or all live places when it has none (it would go last).
  const ahead = [
    '(SELECT COUNT(*) FROM JSON_TABLE(',
    `CONVERT(CONCAT('[', LEFT(wait_queue, LENGTH(wait_queue) - 1), ']') USING utf8mb4), '$[*]'`,
    `COLUMNS (seq FOR ORDINALITY, place VARCHAR(${OWNER_ID_CHARS + LEASE_END_DIGITS}) PATH '$')) AS places`,
    `WHERE CAST(RIGHT(places.place, ${LEASE_END_DIGITS}) AS UNSIGNED) > ${NOW_MS}`,
    `AND places.seq <= IF(${ownLive}, (${own} - 1) DIV ${PLACE_BYTES}, ${2 ** 32}))`,
  ].join(' ')
  // A place renewed less than a quarter of its lease ago is left as it is: a poll that changes nothing
  // writes nothing, so it has no commit to flush.
  const ownFresh = `COALESCE(${ownLive} AND ${ownEnd} - ${NOW_MS} > CAST({lease} AS SIGNED) * 3 DIV 4, FALSE)`
  const leaseEnd = `LEAST(${NOW_MS} + CAST({lease} AS SIGNED), ${MAX_LEASE_END})`
  const leaseEndText = `LPAD(${leaseEnd}, ${LEASE_END_DIGITS}, '0')`
  const newPlace = `CONCAT('"', {ownerId}, ${leaseEndText}, '",')`
  // The decision, from the row as it was: the lease ended and no live place stands ahead of the caller.
  const granted = `COALESCE(${ended} AND (wait_queue IS NULL OR ${ahead} = 0), FALSE)`
  const grantedLast = lastAssignment(granted)
  // The holder's remaining milliseconds as a refusal with wait reports them: 0 when the lease is over, never
  // ends, or has 2^32-1 ms or more left.
  const leftMs = `IF(expires_at > ${NOW_MS} AND expires_at - ${NOW_MS} < ${POSITION_UNIT - 1}, expires_at - ${NOW_MS}, 0)`
  const refusedWithoutWait = `IF(COALESCE(${ended}, FALSE), 0, IFNULL(LEAST(expires_at - ${NOW_MS}, ${MAX_REPORTED_EXPIRES_IN}) + ${REFUSED_BASE}, 0))`
  const refusedWithWait = [
    `${REFUSED_BASE} + LEAST(IF(wait_queue IS NULL, 0, ${ahead}), ${MAX_REPORTED_POSITION}) * ${POSITION_UNIT}`,
    `+ ${leftMs}`,
  ].join(' ')

  // The caller's live place opens the queue: it is first in line with nothing to skip, so the queue need not
  // be walked (JSON_TABLE costs about as much as the rest of the statement).
  const frontEnd = `CAST(SUBSTRING(wait_queue, ${OWNER_ID_CHARS + 2}, ${LEASE_END_DIGITS}) AS UNSIGNED)`
  const atFront = `COALESCE(LEFT(wait_queue, ${OWNER_ID_CHARS + 1}) = CONCAT('"', {ownerId}) AND ${frontEnd} > ${NOW_MS}, FALSE)`
  const claim = `(${atFront} AND COALESCE(${ended}, FALSE))`
  const frontFresh = `${frontEnd} - ${NOW_MS} > CAST({lease} AS SIGNED) * 3 DIV 4`
  const claimLast = lastAssignment(claim)
  // A release hands the lock to the first place when it is live and not the releaser's own (an owner that
  // also queued); a dead first place is left to the queue statement, which drops it.
  const frontId = `SUBSTRING(wait_queue, 2, ${OWNER_ID_CHARS})`
  const handOver = `COALESCE(${frontEnd} > ${NOW_MS} AND ${frontId} <> SHA2(lock_owner, 256), FALSE)`
  // After lock_owner is assigned (default order), a hand-over left a non-NULL owner and a release NULL.
  const handOverLast = `IF(@@SESSION.sql_mode LIKE '%SIMULTANEOUS_ASSIGNMENT%', ${handOver}, lock_owner IS NOT NULL)`

  // The plain acquire's decision on an existing row without a queue: grant an ended lease, refuse a live one
  // to a caller without `wait`. Anything else (a queue to respect, or a place to take) changes nothing and is
  // passed on to acquireQueued. It writes only the columns the statement before queues wrote, and reads
  // `wait_queue`, which it never assigns, and `expires_at`, assigned last: the same in any order. A lease
  // that never ends is refused as REFUSED_BASE (nothing left to report), so no decision reports 0.
  const plainDecision = [
    `fencing_token = IF(wait_queue IS NULL AND ${ended}, LAST_INSERT_ID(fencing_token + 1),`,
    `  fencing_token + 0 * LAST_INSERT_ID(IF(wait_queue IS NULL AND {lease} IS NULL,`,
    `    IFNULL(LEAST(expires_at - ${NOW_MS}, ${MAX_REPORTED_EXPIRES_IN}), 0) + ${REFUSED_BASE}, ${QUEUE_PRESENT_CODE}))),`,
    `lock_owner = IF(wait_queue IS NULL AND ${ended}, {owner}, lock_owner),`,
    `expires_at = IF(wait_queue IS NULL AND ${ended}, ${NOW_MS} + CAST({ttl} AS SIGNED), expires_at)`,
  ].join('\n  ')

  return {
    createLockTable: [
      `CREATE TABLE IF NOT EXISTS ${locks} (`,
      '  key_hash BINARY(32) NOT NULL,',
      '  lock_key LONGBLOB NOT NULL,',
      '  lock_owner LONGBLOB NULL,',
      '  expires_at BIGINT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  wait_queue LONGBLOB NULL,',
      '  queue_ends_at BIGINT NULL,',
      '  PRIMARY KEY (key_hash),',
      `  CHECK (fencing_token BETWEEN 1 AND ${REFUSED_BASE - 1})`,
      ') ENGINE=InnoDB',
    ].join('\n'),
    upgradeLockTable: `ALTER TABLE ${locks} ADD COLUMN wait_queue LONGBLOB NULL, ADD COLUMN queue_ends_at BIGINT NULL`,
    probeLockTable: `SELECT wait_queue, queue_ends_at FROM ${locks} LIMIT 0`,
    createFloorTable: [
      `CREATE TABLE IF NOT EXISTS ${floor} (`,
      '  id TINYINT NOT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  PRIMARY KEY (id)',
      ') ENGINE=InnoDB',
    ].join('\n'),
    seedFloor: `INSERT INTO ${floor} (id, fencing_token) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id`,
    // Insert the row, or make the plain decision on the existing one.
    acquire: statement(
      [
        `INSERT INTO ${locks} (key_hash, lock_key, lock_owner, expires_at, fencing_token)`,
        `VALUES ({keyHash}, {key}, {owner}, ${NOW_MS} + CAST({ttl} AS SIGNED), LAST_INSERT_ID((SELECT fencing_token FROM ${floor} WHERE id = 1 LOCK IN SHARE MODE) + 1))`,
        `ON DUPLICATE KEY UPDATE ${plainDecision}`,
      ].join('\n'),
    ),
    // The same decision on a row that exists, without the INSERT's VALUES: no floor read. A missing row
    // matches nothing and leaves LAST_INSERT_ID unset (0), which no decision reports.
    acquireExisting: statement(`UPDATE ${locks} SET ${plainDecision} WHERE key_hash = {keyHash}`),
    // Insert the row, or decide on the existing one under its row lock, queue or not. MySQL runs the ON
    // DUPLICATE KEY UPDATE assignments left to right, and later ones see earlier results (MariaDB too,
    // unless SIMULTANEOUS_ASSIGNMENT is set), so every assignment but the last reads only columns assigned
    // after it, `wait_queue` and then `expires_at`: each sees the row as it was, in either mode, and makes
    // the same decision from it. The floor is read with a shared lock so pruning cannot delete a row between
    // that read and the insert that replaces it.
    acquireQueued: statement(
      [
        `INSERT INTO ${locks} (key_hash, lock_key, lock_owner, expires_at, fencing_token)`,
        `VALUES ({keyHash}, {key}, {owner}, ${NOW_MS} + CAST({ttl} AS SIGNED), LAST_INSERT_ID((SELECT fencing_token FROM ${floor} WHERE id = 1 LOCK IN SHARE MODE) + 1))`,
        'ON DUPLICATE KEY UPDATE',
        // An ended lease refused to the caller (a live place ahead) belongs to nobody: NULL.
        `  lock_owner = IF(${ended}, IF(${granted}, {owner}, NULL), lock_owner),`,
        // Refused: the token is unchanged; LAST_INSERT_ID is called only to report the refusal.
        `  fencing_token = IF(${granted}, LAST_INSERT_ID(fencing_token + 1),`,
        `    fencing_token + 0 * LAST_INSERT_ID(IF({lease} IS NULL, ${refusedWithoutWait}, ${refusedWithWait}))),`,
        // Never below any place's lease end; left as it is when the queue empties (housekeeping reads it only
        // while a queue exists).
        `  queue_ends_at = IF({lease} IS NOT NULL AND NOT ${granted} AND NOT ${ownFresh}, GREATEST(IFNULL(queue_ends_at, 0), ${leaseEnd}), queue_ends_at),`,
        '  wait_queue = CASE',
        // The grantee stood first among the live: its place and the dead ones before it go.
        `    WHEN ${granted} THEN IF(${ownLive}, NULLIF(SUBSTRING(wait_queue, ${own} + ${PLACE_BYTES}), ''), NULL)`,
        '    WHEN {lease} IS NULL THEN wait_queue',
        `    WHEN wait_queue IS NULL THEN ${newPlace}`,
        `    WHEN ${ownFresh} THEN wait_queue`,
        `    WHEN ${ownLive} THEN INSERT(wait_queue, ${own} + ${OWNER_ID_CHARS + 1}, ${LEASE_END_DIGITS}, ${leaseEndText})`,
        // No live place at all: the dead ones go, the caller is first.
        `    WHEN ${ahead} = 0 THEN ${newPlace}`,
        // A dead place of the caller's own is dropped; it joins again at the tail.
        `    WHEN ${own} > 0 THEN CONCAT(LEFT(wait_queue, ${own} - 1), SUBSTRING(wait_queue, ${own} + ${PLACE_BYTES}), ${newPlace})`,
        `    ELSE CONCAT(wait_queue, ${newPlace})`,
        '  END,',
        `  expires_at = IF(${grantedLast}, ${NOW_MS} + CAST({ttl} AS SIGNED), expires_at)`,
      ].join('\n'),
    ),
    // Assignments in the same order as acquireQueued's, for the same reason: each but the last reads only
    // columns assigned after it.
    acquireAtFront: statement(
      [
        `UPDATE ${locks} SET`,
        `  lock_owner = IF(${claim}, {owner}, IF(COALESCE(${ended}, FALSE), NULL, lock_owner)),`,
        `  fencing_token = IF(${claim}, LAST_INSERT_ID(fencing_token + 1),`,
        `    fencing_token + 0 * LAST_INSERT_ID(IF(${atFront},`,
        `      ${REFUSED_BASE} + ${leftMs},`,
        `      ${QUEUE_PRESENT_CODE}))),`,
        `  queue_ends_at = IF(${atFront} AND NOT ${claim} AND NOT ${frontFresh}, GREATEST(IFNULL(queue_ends_at, 0), ${leaseEnd}), queue_ends_at),`,
        `  wait_queue = IF(${claim}, NULLIF(SUBSTRING(wait_queue, ${PLACE_BYTES + 1}), ''),`,
        `    IF(${atFront} AND NOT ${frontFresh}, INSERT(wait_queue, ${OWNER_ID_CHARS + 2}, ${LEASE_END_DIGITS}, ${leaseEndText}), wait_queue)),`,
        `  expires_at = IF(${claimLast}, ${NOW_MS} + CAST({ttl} AS SIGNED), expires_at)`,
        'WHERE key_hash = {keyHash}',
      ].join('\n'),
    ),
    // A consistent read: no row lock, no commit to flush, so polls never hold up the holder's release or
    // each other. Only an answer to act on; the queue statement decides again under the row lock.
    peekQueued: statement(
      [
        `SELECT ${granted} AS free, COALESCE(${ownLive}, FALSE) AS placed,`,
        `LEAST(IF(wait_queue IS NULL, 0, ${ahead}), ${MAX_REPORTED_POSITION}) AS position,`,
        `${leftMs} AS expires_in, ${handedMine} AS handed, fencing_token`,
        `FROM ${locks} WHERE key_hash = {keyHash}`,
      ].join(' '),
    ),
    // The head polls this one: JSON_TABLE, the walk that finds a position, costs about as much as the rest of
    // the read, and the head's place opening the queue already says its position and whether it may take a
    // lease that ended.
    peekAtFront: statement(
      [
        `SELECT COALESCE(${ended} AND ${atFront}, FALSE) AS free, ${atFront} AS placed, 0 AS position,`,
        `${leftMs} AS expires_in, ${handedMine} AS handed, fencing_token`,
        `FROM ${locks} WHERE key_hash = {keyHash}`,
      ].join(' '),
    ),
    // expires_at first, reading the owner as it was; lock_owner then clears a hand-over to the caller, live
    // (just ended) or not (already over): the same outcome whichever value of expires_at it sees.
    leaveQueue: statement(
      [
        `UPDATE ${locks} SET expires_at = IF(${handedMine}, ${NOW_MS}, expires_at),`,
        `lock_owner = IF(lock_owner = ${handedTo('{ownerId}')}, NULL, lock_owner),`,
        `wait_queue = IF(${own} > 0, NULLIF(CONCAT(LEFT(wait_queue, ${own} - 1), SUBSTRING(wait_queue, ${own} + ${PLACE_BYTES})), ''), wait_queue)`,
        `WHERE key_hash = {keyHash} AND (${own} > 0 OR lock_owner = ${handedTo('{ownerId}')})`,
      ].join(' '),
    ),
    // fencing_token and lock_owner read only columns assigned after them; expires_at and wait_queue follow
    // the decision through the owner just assigned (see handOverLast).
    release: statement(
      [
        `UPDATE ${locks} SET fencing_token = IF(${handOver}, fencing_token + 1, fencing_token),`,
        `lock_owner = IF(${handOver}, ${handedTo(frontId)}, NULL),`,
        `expires_at = IF(${handOverLast}, ${frontEnd}, ${NOW_MS}),`,
        `wait_queue = IF(${handOverLast}, NULLIF(SUBSTRING(wait_queue, ${PLACE_BYTES + 1}), ''), wait_queue)`,
        `WHERE key_hash = {keyHash} AND ${ownsLease}`,
      ].join(' '),
    ),
    releaseUnqueued: statement(
      `UPDATE ${locks} SET lock_owner = NULL, expires_at = ${NOW_MS} WHERE key_hash = {keyHash} AND ${ownsLease} AND wait_queue IS NULL`,
    ),
    // Conditions only in WHERE, so assignment order does not matter. The same grant already claimed by an
    // extend that overtook the claim (on another connection of a pool) still counts, and gets the ttl again:
    // the lease is then what the claim's answer tells Lock. LAST_INSERT_ID reports the match (see extend).
    claim: statement(
      [
        `UPDATE ${locks} SET lock_owner = {owner}, expires_at = ${NOW_MS} + CAST({ttl} AS SIGNED),`,
        'fencing_token = LAST_INSERT_ID(fencing_token),',
        `wait_queue = IF(${own} > 0, NULLIF(CONCAT(LEFT(wait_queue, ${own} - 1), SUBSTRING(wait_queue, ${own} + ${PLACE_BYTES})), ''), wait_queue)`,
        `WHERE key_hash = {keyHash} AND lock_owner IN (${handedTo('{ownerId}')}, {owner})`,
        `AND fencing_token = CAST({token} AS SIGNED) AND ${live}`,
      ].join(' '),
    ),
    // LAST_INSERT_ID reports a match even when the new expiry equals the old one (a row that did not change
    // counts as unaffected when the client did not ask for found rows). A lock handed to the caller becomes
    // its own (the claim).
    extend: statement(
      [
        `UPDATE ${locks} SET expires_at = ${NOW_MS} + CAST({ttl} AS SIGNED), fencing_token = LAST_INSERT_ID(fencing_token), lock_owner = {owner}`,
        `WHERE key_hash = {keyHash} AND ${ownsLease}`,
      ].join(' '),
    ),
    forceRelease: `UPDATE ${locks} SET lock_owner = NULL, expires_at = ${NOW_MS} WHERE key_hash = ? AND ${live}`,
    isLocked: `SELECT 1 AS locked FROM ${locks} WHERE key_hash = ? AND ${live}`,
    scanPage: [
      `SELECT key_hash, fencing_token, COALESCE(${prunable}, FALSE) AS prunable FROM ${locks}`,
      `WHERE key_hash > ? ORDER BY key_hash LIMIT ${SCAN_PAGE}`,
    ].join(' '),
    raiseFloor: [
      `INSERT INTO ${floor} (id, fencing_token) VALUES (1, CAST(? AS SIGNED))`,
      'ON DUPLICATE KEY UPDATE fencing_token = GREATEST(fencing_token, CAST(? AS SIGNED))',
    ].join(' '),
    deleteEnded: [
      `DELETE FROM ${locks} WHERE key_hash IN (${Array.from({ length: PRUNE_BATCH }, () => '?').join(', ')})`,
      `AND ${prunable} AND fencing_token <= CAST(? AS SIGNED)`,
    ].join(' '),
  }
}

/**
 * Decodes what the acquire statement reported through LAST_INSERT_ID (see `REFUSED_BASE`, and
 * `POSITION_UNIT` for a caller that passed `wait`).
 */
export function readAcquire(insertId: number, waited: boolean): AcquireResult | typeof QUEUE_PRESENT {
  if (!Number.isSafeInteger(insertId) || insertId < 0) {
    throw new Error(`unexpected insertId ${String(insertId)} from the acquire statement`)
  }
  if (insertId === QUEUE_PRESENT_CODE) return QUEUE_PRESENT
  if (insertId === 0) return { acquired: false }
  if (insertId < REFUSED_BASE) return { acquired: true, fencingToken: insertId }
  const refusal = insertId - REFUSED_BASE
  // A live lease has at least 1 ms left: 0 is one that never ends.
  if (!waited) return refusal === 0 ? { acquired: false } : { acquired: false, expiresIn: refusal }
  const position = Math.floor(refusal / POSITION_UNIT)
  const expiresIn = refusal % POSITION_UNIT
  const result: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
  if (expiresIn > 0) result.expiresIn = expiresIn
  if (position < MAX_REPORTED_POSITION) result.position = position
  return result
}

/** `readExisting`'s answer when the row is gone: the INSERT statement must decide. */
export const NO_ROW: unique symbol = Symbol('no row')

/** Decodes what `acquireExisting` reported: as `readAcquire`, except that 0 means it found no row. */
export function readExisting(insertId: number, waited: boolean): AcquireResult | typeof QUEUE_PRESENT | typeof NO_ROW {
  return insertId === 0 ? NO_ROW : readAcquire(insertId, waited)
}

/** A lock a release handed to the caller, as its poll saw it: the token, and milliseconds left of the claim window. */
export interface PeekedHandOver {
  handedToken: number
  windowLeft: number
}

/**
 * What a waiter's poll (`peekQueued`) saw: a hand-over to the caller, the refusal to report, or undefined
 * when the caller must run the queue statement (the lock may be its now, its place is gone, or the key has
 * no row).
 */
export function readPeek(rows: readonly Record<string, unknown>[]): AcquireResult | PeekedHandOver | undefined {
  const row = rows[0]
  if (row === undefined) return undefined
  if (Number(row.handed) === 1) {
    const handedToken = Number(row.fencing_token)
    const windowLeft = Number(row.expires_in)
    if (!Number.isSafeInteger(handedToken) || handedToken < 1 || !Number.isSafeInteger(windowLeft) || windowLeft < 0) {
      throw new Error(`unexpected token ${String(row.fencing_token)} or window ${String(row.expires_in)} of a hand-over`)
    }
    return { handedToken, windowLeft }
  }
  if (Number(row.free) !== 0 || Number(row.placed) !== 1) return undefined
  const position = Number(row.position)
  const expiresIn = Number(row.expires_in)
  if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(expiresIn) || expiresIn < 0) {
    throw new Error(`unexpected position ${String(row.position)} or expires_in ${String(row.expires_in)} from the poll`)
  }
  const result: { acquired: false; expiresIn?: number; position?: number } = { acquired: false }
  if (expiresIn > 0) result.expiresIn = expiresIn
  if (position < MAX_REPORTED_POSITION) result.position = position
  return result
}
