import { errors } from '@verrou/core'

/** The two tables one store uses, as identifiers already quoted for SQL. */
export interface LockTables {
  /** One row per key ever locked and not yet pruned. */
  locks: string
  /** One row: the highest fencing token of any pruned row, so a pruned key never reuses a token. */
  floor: string
  /**
   * Semaphores and read-write locks: one row per shared key. `undefined` when `<table>_shared` would be too
   * long an identifier; the mutex tables still work, and the first shared operation says why it cannot.
   */
  shared: string | undefined
}

/** Appended to the lock table's name to name its token-floor table. */
export const FLOOR_SUFFIX = '_floor'
/** Appended to the lock table's name to name the table of shared keys. */
export const SHARED_SUFFIX = '_shared'

const MAX_IDENTIFIER_LENGTH = 64
// Plain identifiers only: they need no escaping beyond the backticks, and read the same in every client.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]*$/

/**
 * Validates `name` (`table` or `database.table`) and returns both table names quoted with backticks.
 * Anything else (quotes, spaces, semicolons, comments) is refused before it can reach the server.
 */
export function resolveTables(name: unknown): LockTables {
  if (typeof name !== 'string') {
    throw new errors.E_INVALID_ARGUMENT(`tableName must be a string, got ${typeof name}`)
  }
  const parts = name.split('.')
  const table = parts.at(-1) ?? ''
  const schema = parts.length === 2 ? parts[0] : undefined
  const valid =
    parts.length <= 2 &&
    IDENTIFIER.test(table) &&
    table.length + FLOOR_SUFFIX.length <= MAX_IDENTIFIER_LENGTH &&
    (schema === undefined || (IDENTIFIER.test(schema) && schema.length <= MAX_IDENTIFIER_LENGTH))
  if (!valid) {
    throw new errors.E_INVALID_ARGUMENT(
      `tableName must be "table" or "database.table" made of letters, digits, "_" and "$" (not starting with a digit), ` +
        `the table part at most ${MAX_IDENTIFIER_LENGTH - FLOOR_SUFFIX.length} characters; got ${JSON.stringify(name)}`,
    )
  }
  const prefix = schema === undefined ? '' : `${quote(schema)}.`
  return {
    locks: `${prefix}${quote(table)}`,
    floor: `${prefix}${quote(`${table}${FLOOR_SUFFIX}`)}`,
    shared:
      table.length + SHARED_SUFFIX.length <= MAX_IDENTIFIER_LENGTH ? `${prefix}${quote(`${table}${SHARED_SUFFIX}`)}` : undefined,
  }
}

function quote(identifier: string): string {
  return `\`${identifier}\``
}
