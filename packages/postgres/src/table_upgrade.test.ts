import { readFile } from 'node:fs/promises'
import { errors } from '@verrou/core'
import { afterAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { createTableSql, upgradeTableSql } from './sql.js'
import { PostgresStore } from './store.js'
import { resolveTableNames } from './table_name.js'
import { toStoredBytes } from './text_bytes.js'

/**
 * Tables created by the release before the wait queue: the same DDL without the queue's columns. Written
 * out here, not derived from the current code, because that is what users have in their databases.
 */
function previousReleaseDdl(tableName: string): string {
  return `CREATE TABLE "${tableName}" (
  key_hash bytea PRIMARY KEY,
  key bytea NOT NULL,
  owner bytea,
  expires_at timestamptz,
  fencing_token bigint NOT NULL
);
CREATE SEQUENCE "${tableName}_fencing_seq";`
}

const pool = createPool()
const tables: string[] = []

async function previousReleaseTable(): Promise<string> {
  const tableName = uniqueTableName('verrou_upgrade')
  tables.push(tableName)
  await pool.query(previousReleaseDdl(tableName))
  return tableName
}

/** A lock taken the way the previous release's acquire wrote it. */
async function heldByPreviousRelease(tableName: string, key: string, owner: string): Promise<void> {
  await pool.query(
    `INSERT INTO "${tableName}" (key_hash, key, owner, expires_at, fencing_token)
     VALUES (sha256($1::bytea), $1::bytea, $2::bytea, clock_timestamp() + interval '1 minute', nextval('"${tableName}_fencing_seq"'))`,
    [toStoredBytes(key), toStoredBytes(owner)],
  )
}

async function queueColumns(tableName: string): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
     AND attname IN ('waiters', 'waiter_leases', 'waiter_inboxes') ORDER BY attname`,
    [`"${tableName}"`],
  )
  return rows.map((row: { attname: string }) => row.attname)
}

afterAll(async () => {
  for (const table of tables) await dropTable(pool, table)
  await pool.end()
})

describe('a table created by the previous release', () => {
  test('autoCreateTable (the default) adds the queue columns on first use; locks held before the upgrade stay held', async () => {
    const tableName = await previousReleaseTable()
    const key = uniqueKey()
    await heldByPreviousRelease(tableName, key, 'old-holder')
    const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
    expect(await store.isLocked(key)).toBe(true)
    expect(await queueColumns(tableName)).toEqual(['waiter_inboxes', 'waiter_leases', 'waiters'])
    expect(await store.acquire(key, 'waiter', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 0 })
    expect((await store.acquire(key, 'newcomer', 60_000)).acquired).toBe(false)
    expect(await store.release(key, 'old-holder')).toBe(true)
    expect((await store.acquire(key, 'waiter', 60_000, { lease: 60_000 })).acquired).toBe(true)
    // A process still on the previous release can go on inserting rows: the new columns have defaults.
    const otherKey = uniqueKey()
    await heldByPreviousRelease(tableName, otherKey, 'old-holder')
    expect(await store.isLocked(otherKey)).toBe(true)
    expect(await store.release(otherKey, 'old-holder')).toBe(true)
  })

  test('a table with the queue but not its inboxes (an earlier 1.0 build) gains the column; waiters queued before keep their place', async () => {
    const tableName = await previousReleaseTable()
    await pool.query(`ALTER TABLE "${tableName}"
      ADD COLUMN waiters bytea[] NOT NULL DEFAULT '{}', ADD COLUMN waiter_leases timestamptz[] NOT NULL DEFAULT '{}'`)
    const key = uniqueKey()
    await heldByPreviousRelease(tableName, key, 'holder')
    // A place written without an inbox, as that build wrote it.
    await pool.query(
      `UPDATE "${tableName}" SET waiters = ARRAY[$2::bytea], waiter_leases = ARRAY[clock_timestamp() + interval '1 minute']
       WHERE key_hash = sha256($1::bytea)`,
      [toStoredBytes(key), toStoredBytes('early')],
    )
    const store = new PostgresStore({ connection: pool, tableName, pruneInterval: false })
    try {
      expect(await store.acquire(key, 'later', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 1 })
      expect(await queueColumns(tableName)).toEqual(['waiter_inboxes', 'waiter_leases', 'waiters'])
      // The early place reads as having no inbox; the later one has this store's.
      const { rows } = await pool.query(`SELECT waiter_inboxes FROM "${tableName}" WHERE key_hash = sha256($1::bytea)`, [
        toStoredBytes(key),
      ])
      expect(rows[0]?.waiter_inboxes).toEqual(['', expect.stringMatching(/^verrou_heir_/)])
      expect(await store.release(key, 'holder')).toBe(true)
      expect(await store.acquire(key, 'early', 60_000, { lease: 60_000 })).toMatchObject({ acquired: true })
      expect(await store.release(key, 'early')).toBe(true)
      expect(await store.acquire(key, 'later', 60_000, { lease: 60_000 })).toMatchObject({ acquired: true })
    } finally {
      await store.close()
    }
  })

  test('10 stores on 10 sessions upgrading the same table at once all succeed', async () => {
    const tableName = await previousReleaseTable()
    const clients = await Promise.all(Array.from({ length: 10 }, () => createClient()))
    try {
      const stores = clients.map(
        (connection) => new PostgresStore({ connection, tableName, listen: false, pruneInterval: false }),
      )
      const key = uniqueKey()
      const results = await Promise.all(stores.map((store, i) => store.acquire(key, `owner-${i}`, 60_000, { lease: 60_000 })))
      expect(results.filter((result) => result.acquired)).toHaveLength(1)
      expect(results.flatMap((result) => (result.acquired ? [] : [result.position])).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8])
    } finally {
      await Promise.all(clients.map((client) => client.end()))
    }
  })

  test('with autoCreateTable: false, every operation is a storage error that gives the statement to run; after it, all works', async () => {
    const tableName = await previousReleaseTable()
    const store = new PostgresStore({ connection: pool, tableName, autoCreateTable: false, listen: false, pruneInterval: false })
    const ddl = upgradeTableSql(resolveTableNames(tableName), { guarded: false })
    const key = uniqueKey()
    for (const operation of [
      () => store.acquire(key, 'a', 60_000),
      () => store.release(key, 'a'),
      () => store.forceRelease(key),
      () => store.leaveQueue(key, 'a'),
    ]) {
      const error = await operation().then(
        () => undefined,
        (reason: unknown) => reason,
      )
      expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect(error).toMatchObject({ cause: { code: '42703' } })
      expect((error as Error).message).toContain(ddl)
    }
    // Neither extend nor isLocked reads the queue: they keep working on the old table.
    expect(await store.isLocked(key)).toBe(false)
    expect(await queueColumns(tableName)).toEqual([])

    await pool.query(ddl)
    expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
    expect(await store.acquire(key, 'b', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 0 })
  })

  test('a role that may use the table but not alter it gets an error naming the statement its owner must run', async () => {
    const tableName = await previousReleaseTable()
    const role = uniqueTableName('verrou_role')
    await pool.query(`CREATE ROLE "${role}" LOGIN;
      GRANT SELECT, INSERT, UPDATE, DELETE ON "${tableName}" TO "${role}";
      GRANT USAGE ON SEQUENCE "${tableName}_fencing_seq" TO "${role}"`)
    const restricted = createPool({ user: role, connectionString: undefined })
    try {
      const store = new PostgresStore({ connection: restricted, tableName, listen: false, pruneInterval: false })
      const error = await store.acquire(uniqueKey(), 'a', 60_000).then(
        () => undefined,
        (reason: unknown) => reason,
      )
      expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect(error).toMatchObject({ cause: { code: '42501' } })
      expect((error as Error).message).toContain(upgradeTableSql(resolveTableNames(tableName), { guarded: false }))
      expect(await queueColumns(tableName)).toEqual([])

      // Once the owner has run it and granted the new sequence, the same store works: the failed upgrade
      // was not remembered.
      await pool.query(upgradeTableSql(resolveTableNames(tableName), { guarded: false }))
      await pool.query(`GRANT USAGE, UPDATE ON SEQUENCE "${tableName}_prune_seq" TO "${role}"`)
      const key = uniqueKey()
      expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
      expect(await store.release(key, 'a')).toBe(true)
    } finally {
      await restricted.end()
      await pool.query(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`)
    }
  })

  test('a table without the prune mark gets it from a store that may create it; with autoCreateTable: false, acquire says what to run', async () => {
    const tableName = uniqueTableName('verrou_unmarked')
    tables.push(tableName)
    const names = resolveTableNames(tableName)
    await pool.query(createTableSql(names, { guarded: false }))
    await pool.query(`DROP SEQUENCE "${tableName}_prune_seq"`)
    const manual = new PostgresStore({ connection: pool, tableName, autoCreateTable: false, listen: false, pruneInterval: false })
    const error = await manual.acquire(uniqueKey(), 'a', 60_000).then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect(error).toMatchObject({ cause: { code: '42P01' } })
    expect((error as Error).message).toContain(upgradeTableSql(names, { guarded: false }))

    const automatic = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
    expect((await automatic.acquire(uniqueKey(), 'a', 60_000)).acquired).toBe(true)
    const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS present', [names.pruneMark])
    expect(rows[0].present).toBe(true)
    expect((await manual.acquire(uniqueKey(), 'a', 60_000)).acquired).toBe(true)
  })

  test('the upgrade statement printed in the README is the one the store runs', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
    const blocks = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!.trim())
    expect(blocks).toContain(upgradeTableSql(resolveTableNames('verrou_locks'), { guarded: false }))
  })
})
