import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { errors } from '@verrou/core'
import type { Pool, RowDataPacket } from 'mysql2/promise'
import { afterAll, describe, expect, test } from 'vitest'
import { connectionOptions, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
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
