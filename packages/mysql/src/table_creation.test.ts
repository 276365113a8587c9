import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { errors } from '@verrou/core'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { connectionOptions, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { keyHash, toBytes } from './key_bytes.js'
import { lockStatements } from './sql.js'
import { resolveTables } from './table_name.js'

const pool = createTestPool()
const created: string[] = []
const database = connectionOptions.database!

function tableName(label: string): string {
  const name = uniqueTableName(label)
  created.push(name)
  return name
}

async function tablesLike(db: Pool, pattern: string): Promise<string[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE ? ORDER BY 1',
    [database, pattern],
  )
  return rows.map((row) => row.name as string)
}

/** The lock table exactly as the release before wait queues created it, with its floor. */
async function createPreviousReleaseTables(name: string): Promise<void> {
  await pool.query(
    [
      `CREATE TABLE \`${name}\` (`,
      '  key_hash BINARY(32) NOT NULL,',
      '  lock_key LONGBLOB NOT NULL,',
      '  lock_owner LONGBLOB NULL,',
      '  expires_at BIGINT NULL,',
      '  fencing_token BIGINT NOT NULL,',
      '  PRIMARY KEY (key_hash),',
      '  KEY ended_leases (expires_at, fencing_token),',
      '  CHECK (fencing_token BETWEEN 1 AND 4503599627370495)',
      ') ENGINE=InnoDB',
    ].join('\n'),
  )
  const ddl = lockStatements(resolveTables(name))
  await pool.query(ddl.createFloorTable)
  await pool.query(ddl.seedFloor)
}

/** A lock that release took and still holds: owner `old-holder`, token 7, a minute left. */
async function heldRowOfPreviousRelease(name: string, key: string): Promise<void> {
  await pool.query(
    `INSERT INTO \`${name}\` (key_hash, lock_key, lock_owner, expires_at, fencing_token)
     VALUES (?, ?, ?, (TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000) + 60000, 7)`,
    [keyHash(toBytes(key)), toBytes(key), toBytes('old-holder')],
  )
}

afterAll(async () => {
  for (const name of created) await dropTables(pool, name)
  await pool.end()
})

describe('table creation', () => {
  test('10 stores in 10 processes creating the table at once: all succeed and exactly one gets the lock', async () => {
    const name = tableName('race')
    const pools = Array.from({ length: 10 }, () => createTestPool({ connectionLimit: 2 }))
    try {
      const key = `verrou:mysql:${randomUUID()}`
      const results = await Promise.all(
        pools.map((each, i) => mysqlStore({ connection: each, tableName: name }).acquire(key, `owner-${i}`, 10_000)),
      )
      expect(results.filter((result) => result.acquired)).toHaveLength(1)
      expect(await tablesLike(pool, `${name}%`)).toEqual([name, `${name}_floor`])
      const [floorRows] = await pool.query<RowDataPacket[]>(`SELECT * FROM \`${name}_floor\``)
      expect(floorRows).toEqual([{ id: 1, fencing_token: 0 }])
    } finally {
      await Promise.all(pools.map((each) => each.end()))
    }
  })

  test('with autoCreateTable: false a missing table is a storage error on every operation, not "not acquired"', async () => {
    const name = tableName('missing')
    const store = mysqlStore({ connection: pool, tableName: name, autoCreateTable: false })
    const key = 'k'
    const calls = [
      () => store.acquire(key, 'o', 1_000),
      () => store.release(key, 'o'),
      () => store.extend(key, 'o', 1_000),
      () => store.isLocked(key),
      () => store.forceRelease(key),
      () => store.pruneExpired(),
    ]
    for (const call of calls) {
      const error = await call().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect((error as Error).cause).toMatchObject({ code: 'ER_NO_SUCH_TABLE' })
    }
    expect(await tablesLike(pool, `${name}%`)).toEqual([])
  })

  test('the README shows the exact DDL, and a table made from it works with autoCreateTable: false', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
    const ddl = lockStatements(resolveTables('verrou_locks'))
    for (const statement of [ddl.createLockTable, ddl.createFloorTable, ddl.seedFloor, ddl.upgradeLockTable]) {
      expect(readme).toContain(`${statement};`)
    }
    const name = tableName('readme')
    for (const statement of [ddl.createLockTable, ddl.createFloorTable, ddl.seedFloor]) {
      await pool.query(statement.replaceAll('`verrou_locks', `\`${name}`))
    }
    const store = mysqlStore({ connection: pool, tableName: name, autoCreateTable: false })
    expect(await store.acquire('k', 'o', 1_000)).toEqual({ acquired: true, fencingToken: 1 })
    expect(await store.release('k', 'o')).toBe(true)
  })

  test('a table created by the release before wait queues is upgraded on first use, by many processes at once, keeping its locks', async () => {
    const name = tableName('upgrade')
    await createPreviousReleaseTables(name)
    const key = `verrou:mysql:${randomUUID()}`
    await heldRowOfPreviousRelease(name, key)
    const pools = Array.from({ length: 5 }, () => createTestPool({ connectionLimit: 2 }))
    try {
      const stores = pools.map((each) => mysqlStore({ connection: each, tableName: name, pruneInterval: false }))
      const replies = await Promise.all(stores.map((store, i) => store.acquire(key, `waiter-${i}`, 1_000, { lease: 10_000 })))
      expect(replies.every((reply) => !reply.acquired)).toBe(true)
      expect(replies.map((reply) => (reply.acquired ? -1 : reply.position)).sort()).toEqual([0, 1, 2, 3, 4])
      expect(await stores[0]!.isLocked(key)).toBe(true)
      expect(await stores[0]!.release(key, 'old-holder')).toBe(true)
      const head = replies.findIndex((reply) => !reply.acquired && reply.position === 0)
      // The release handed the lock to the head; its next poll reads it.
      expect(await stores[head]!.acquire(key, `waiter-${head}`, 1_000, { lease: 10_000 })).toMatchObject({
        acquired: true,
        fencingToken: 8,
      })
    } finally {
      await Promise.all(pools.map((each) => each.end()))
    }
    const [columns] = await pool.query<RowDataPacket[]>(
      'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position',
      [database, name],
    )
    expect(columns.map((column) => column.name)).toEqual([
      'key_hash',
      'lock_key',
      'lock_owner',
      'expires_at',
      'fencing_token',
      'wait_queue',
      'queue_ends_at',
    ])
  })

  test('with autoCreateTable: false, a table from before wait queues is a storage error that gives the ALTER to run', async () => {
    const name = tableName('stale')
    await createPreviousReleaseTables(name)
    const key = `verrou:mysql:${randomUUID()}`
    await heldRowOfPreviousRelease(name, key)
    const store = mysqlStore({ connection: pool, tableName: name, autoCreateTable: false, pruneInterval: false })
    const upgrade = lockStatements(resolveTables(name)).upgradeLockTable
    for (const call of [() => store.acquire(key, 'o', 1_000), () => store.leaveQueue(key, 'o'), () => store.pruneExpired()]) {
      const error = await call().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
      expect((error as Error).message).toContain(upgrade)
      expect((error as Error).cause).toMatchObject({ code: 'ER_BAD_FIELD_ERROR' })
    }
    // The lock held before is untouched, and operations that need no queue still answer.
    expect(await store.isLocked(key)).toBe(true)
    await pool.query(upgrade)
    expect(await store.acquire(key, 'o', 1_000, { lease: 1_000 })).toMatchObject({ acquired: false, position: 0 })
    expect(await store.release(key, 'old-holder')).toBe(true)
    expect(await store.acquire(key, 'o', 1_000, { lease: 1_000 })).toMatchObject({ acquired: true, fencingToken: 8 })
  })

  test('a floor table created without its row is reported as such, not as a bare SQL error', async () => {
    const name = tableName('unseeded')
    const ddl = lockStatements(resolveTables(name))
    await pool.query(ddl.createLockTable)
    await pool.query(ddl.createFloorTable)
    const store = mysqlStore({ connection: pool, tableName: name, autoCreateTable: false })
    const error = await store.acquire('k', 'o', 1_000).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((error as Error).message).toContain(`\`${name}_floor\` has no row`)
  })

  test('a database-qualified table name is honoured', async () => {
    const name = tableName('qualified')
    const store = mysqlStore({ connection: pool, tableName: `${database}.${name}` })
    expect(await store.acquire('k', 'o', 1_000)).toMatchObject({ acquired: true })
    expect(await tablesLike(pool, `${name}%`)).toEqual([name, `${name}_floor`])
  })

  test('hostile table names are refused before anything reaches the server', async () => {
    const before = await tablesLike(pool, '%')
    for (const name of [
      "verrou'; DROP TABLE verrou_locks; --",
      'verrou`; DROP TABLE verrou_locks; --',
      'verrou; DROP TABLE verrou_locks',
      'verrou -- comment',
      'verrou/**/x',
    ]) {
      expect(() => mysqlStore({ connection: pool, tableName: name })).toThrow(errors.E_INVALID_ARGUMENT)
    }
    expect(await tablesLike(pool, '%')).toEqual(before)
  })
})
