import { createHash } from 'node:crypto'
import { ddlLockKeys, type TableNames } from './table_name.js'

/**
 * Every statement the store sends, built once per store from validated, quoted names. Values are always
 * parameters. Conventions: $1 key bytes, $2 owner bytes, $3 ttl in ms (NULL: never expires).
 *
 * A row is held while `owner IS NOT NULL` and `expires_at` is NULL (no expiry) or still ahead of the
 * server's clock_timestamp() (not now(): that is frozen at the start of the transaction). Released rows
 * stay, owner NULL and expires_at set to the release time, until housekeeping deletes them. Tokens come
 * from a per-table sequence, so deleting a row never resets a key's counter.
 *
 * The lock operations are {@link HotStatement}s: sent as named prepared statements, each is parsed and
 * analysed once per session instead of on every call. DDL and housekeeping are rare and stay unnamed.
 */
export interface Statements {
  createTable: string
  tableExists: string
  acquire: HotStatement
  release: HotStatement
  extend: HotStatement
  forceRelease: HotStatement
  isLocked: HotStatement
  prune: string
}

/**
 * A lock operation's statement and the name it is prepared under. Prepared statements live per session and
 * pg refuses to reuse a name for another text, so the name is derived from the text itself (which holds
 * the quoted table and sequence): stores of the same table share a statement, stores of different tables
 * never clash. `verrou_force_release_` plus 16 hex digits is 37 bytes, well within the 63 of an identifier.
 */
export interface HotStatement {
  readonly name: string
  readonly text: string
}

function hot(operation: string, text: string): HotStatement {
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16)
  return { name: `verrou_${operation}_${digest}`, text }
}

export function buildStatements(names: TableNames): Statements {
  const { table, sequence } = names
  const keyMatches = 'key_hash = sha256($1::bytea)'
  const live = 'owner IS NOT NULL AND (expires_at IS NULL OR expires_at > clock_timestamp())'
  const leaseEnd = `clock_timestamp() + $3::float8 * interval '1 millisecond'`
  const nextToken = `nextval('${sequence}'::regclass)`

  return {
    createTable: createTableSql(names, { guarded: true }),

    // to_regclass parses its argument as a (quoted) name, so it finds exactly the objects we would create.
    tableExists: 'SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS present',

    // The `holder` snapshot spares pollers a write (and a burnt token) while the lock is visibly held and
    // gives the holder's remaining lease for free. The decision itself is ON CONFLICT's WHERE, evaluated on
    // the latest row version under its row lock: of any number of racing acquirers, exactly one wins.
    acquire: hot(
      'acquire',
      `WITH holder AS (
  SELECT expires_at - clock_timestamp() AS remaining FROM ${table} WHERE ${keyMatches} AND ${live}
), acquired AS (
  INSERT INTO ${table} AS held (key_hash, key, owner, expires_at, fencing_token)
  SELECT sha256($1::bytea), $1::bytea, $2::bytea, ${leaseEnd}, ${nextToken}
  WHERE NOT EXISTS (SELECT 1 FROM holder)
  ON CONFLICT (key_hash) DO UPDATE
    SET owner = excluded.owner, expires_at = ${leaseEnd}, fencing_token = ${nextToken}
    WHERE held.owner IS NULL OR held.expires_at <= clock_timestamp()
  RETURNING held.fencing_token
)
SELECT fencing_token::text AS fencing_token, NULL::float8 AS expires_in FROM acquired
UNION ALL
-- GREATEST ignores NULLs, so a lease that never expires (remaining NULL) is kept NULL explicitly.
SELECT NULL, CASE WHEN remaining IS NOT NULL THEN GREATEST(ceil(extract(epoch FROM remaining) * 1000), 1) END::float8
FROM holder
WHERE NOT EXISTS (SELECT 1 FROM acquired)`,
    ),

    // pg_notify runs only when a row was released, in the same statement: no extra round trip.
    release: hot(
      'release',
      `WITH released AS (
  UPDATE ${table} SET owner = NULL, expires_at = clock_timestamp()
  WHERE ${keyMatches} AND owner = $2::bytea AND (expires_at IS NULL OR expires_at > clock_timestamp())
  RETURNING 1
)
SELECT pg_notify($3::text, $4::text) FROM released`,
    ),

    extend: hot(
      'extend',
      `UPDATE ${table} SET expires_at = ${leaseEnd}
WHERE ${keyMatches} AND owner = $2::bytea AND (expires_at IS NULL OR expires_at > clock_timestamp())`,
    ),

    forceRelease: hot(
      'force_release',
      `WITH released AS (
  UPDATE ${table} SET owner = NULL, expires_at = clock_timestamp()
  WHERE ${keyMatches} AND ${live}
  RETURNING 1
)
SELECT pg_notify($2::text, $3::text) FROM released`,
    ),

    isLocked: hot('is_locked', `SELECT EXISTS (SELECT 1 FROM ${table} WHERE ${keyMatches} AND ${live}) AS locked`),

    // $1 grace in ms, $2 batch size. Rows are locked with SKIP LOCKED and re-checked under the lock, so a
    // row being taken over right now is left alone.
    prune: `DELETE FROM ${table} WHERE key_hash IN (
  SELECT key_hash FROM ${table}
  WHERE expires_at < clock_timestamp() - $1::float8 * interval '1 millisecond'
  LIMIT $2::int FOR UPDATE SKIP LOCKED
) AND expires_at < clock_timestamp() - $1::float8 * interval '1 millisecond'`,
  }
}

/**
 * The DDL of a store's table and sequence. `guarded` adds the advisory transaction lock that makes
 * concurrent creation safe: CREATE ... IF NOT EXISTS alone can still fail on the catalogs' unique indexes
 * when two sessions run it at once. Sent without parameters, the statements run as one implicit transaction.
 */
export function createTableSql(names: TableNames, options: { guarded: boolean }): string {
  const [classId, objectId] = ddlLockKeys(names)
  const lock = options.guarded ? `SELECT pg_advisory_xact_lock(${classId}, ${objectId});\n` : ''
  return `${lock}CREATE TABLE IF NOT EXISTS ${names.table} (
  key_hash bytea PRIMARY KEY,
  key bytea NOT NULL,
  owner bytea,
  expires_at timestamptz,
  fencing_token bigint NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS ${names.sequence};`
}
