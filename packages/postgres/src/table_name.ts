import { createHash } from 'node:crypto'
import { errors } from '@verrou/core'

/** PostgreSQL truncates identifiers and channel names longer than this many bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63
/** Appended to the table name to name its fencing-token sequence: the longest suffix of all. */
const SEQUENCE_SUFFIX = '_fencing_seq'
/** Appended to the table name to name its prune mark (see `pruneMark`). */
export const PRUNE_MARK_SUFFIX = '_prune_seq'
/** Appended to the table name for the shared locks' table and function: both shorter than SEQUENCE_SUFFIX. */
const SHARED_TABLE_SUFFIX = '_shared'
const SHARED_FUNCTION_SUFFIX = '_shared_v1'
const PART = /^[A-Za-z_][A-Za-z0-9_$]*$/

/** The validated names of everything one store uses, ready to splice into SQL. */
export interface TableNames {
  /** As the user wrote it, e.g. `locks` or `app.locks`. */
  readonly display: string
  /** Quoted, possibly schema-qualified: `"app"."locks"`. */
  readonly table: string
  /** Quoted fencing-token sequence, in the table's schema: `"app"."locks_fencing_seq"`. */
  readonly sequence: string
  /**
   * Quoted sequence, in the table's schema, that housekeeping raises to at least the token of every row it
   * deletes, before the deletion commits: `"app"."locks_prune_seq"`. An insert compares its token with it
   * (see `redraw` in sql.ts).
   */
  readonly pruneMark: string
  /** NOTIFY channel of this table's releases (a plain string: pg_notify takes it as a value). */
  readonly channel: string
  /** Quoted table of the semaphores and read-write locks: `"app"."locks_shared"`. */
  readonly sharedTable: string
  /**
   * Quoted function that runs every shared-lock operation, created with `sharedTable`. The version in its
   * name lets a later release change its signature without replacing the one older processes call.
   */
  readonly sharedFunction: string
}

/**
 * Validates `tableName` (`table` or `schema.table`, each part a plain identifier) and derives the other
 * names from it. Only letters, digits, `_` and `$` pass, so nothing a user sends can break out of the
 * quoting; names are quoted, hence used exactly as written (case-sensitive).
 */
export function resolveTableNames(tableName: unknown): TableNames {
  if (typeof tableName !== 'string') {
    throw new errors.E_INVALID_ARGUMENT(`tableName must be a string, got ${typeof tableName}`)
  }
  const parts = tableName.split('.')
  const valid =
    parts.length <= 2 &&
    parts.every((part) => PART.test(part) && Buffer.byteLength(part) <= MAX_IDENTIFIER_BYTES) &&
    Buffer.byteLength(parts[parts.length - 1]!) + SEQUENCE_SUFFIX.length <= MAX_IDENTIFIER_BYTES
  if (!valid) {
    throw new errors.E_INVALID_ARGUMENT(
      `tableName must be "table" or "schema.table", each part starting with a letter or "_" and made of letters, digits, "_" and "$" (table at most ${
        MAX_IDENTIFIER_BYTES - SEQUENCE_SUFFIX.length
      } characters, schema at most ${MAX_IDENTIFIER_BYTES}), got ${JSON.stringify(tableName)}`,
    )
  }
  const schema = parts.length === 2 ? `${quoteIdentifier(parts[0]!)}.` : ''
  const table = parts[parts.length - 1]!
  return {
    display: tableName,
    table: `${schema}${quoteIdentifier(table)}`,
    sequence: `${schema}${quoteIdentifier(`${table}${SEQUENCE_SUFFIX}`)}`,
    pruneMark: `${schema}${quoteIdentifier(`${table}${PRUNE_MARK_SUFFIX}`)}`,
    channel: channelFor(tableName),
    sharedTable: `${schema}${quoteIdentifier(`${table}${SHARED_TABLE_SUFFIX}`)}`,
    sharedFunction: `${schema}${quoteIdentifier(`${table}${SHARED_FUNCTION_SUFFIX}`)}`,
  }
}

/** Double-quotes an identifier. Callers pass validated names; doubling quotes keeps it safe regardless. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** One channel per table; a qualified name too long for a channel is replaced by its hash. */
function channelFor(tableName: string): string {
  const readable = `verrou:${tableName}`
  if (Buffer.byteLength(readable) <= MAX_IDENTIFIER_BYTES) return readable
  return `verrou:${createHash('sha256').update(tableName).digest('hex').slice(0, 40)}`
}

/**
 * Two int4 keys for `pg_advisory_xact_lock` that serialise table creation for one table name, so stores
 * starting together do not race on the catalogs.
 */
export function ddlLockKeys(names: TableNames): [number, number] {
  const digest = createHash('sha256').update(names.table).digest()
  // The first key is fixed ('verr' in ASCII) to mark the lock as Verrou's.
  return [0x76657272, digest.readInt32BE(0)]
}

/**
 * The advisory lock that serialises the prunes of one table (see `prune` in sql.ts): the DDL lock's pair
 * with the second key's bits flipped, so the two never wait on each other.
 */
export function pruneLockKeys(names: TableNames): [number, number] {
  const [classId, objectId] = ddlLockKeys(names)
  return [classId, ~objectId]
}
