import { readFile } from 'node:fs/promises'
import { errors } from '@verrou/core'
import type pg from 'pg'
import { afterAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { createTableSql } from './sql.js'
import { PostgresStore } from './store.js'
import { resolveTableNames } from './table_name.js'

const pool = createPool()
const schema = uniqueTableName('verrou_schema')
const tables: string[] = []

function trackTable(name: string): string {
  tables.push(name)
  return name
}

afterAll(async () => {
  for (const table of tables) await dropTable(pool, table)
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await pool.end()
})

async function tableExists(schemaName: string, table: string): Promise<boolean> {
  const { rows } = await pool.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schemaName, table])
  return rows.length === 1
}

describe('tableName', () => {
  test('hostile or malformed names are rejected with E_INVALID_ARGUMENT before anything is sent', () => {
    let sent = 0
    const spy = { query: () => sent++, idleCount: 0, totalCount: 0 } as unknown as pg.Pool
    const hostile = [
      'locks"; DROP TABLE users; --',
      "locks'; --",
      'locks; DELETE FROM x',
      'locks -- comment',
      'a.b.c',
      '.locks',
      'locks.',
      '',
      '1locks',
      'lo cks',
      'lo"cks',
      'locks\0',
      'räksmörgås',
      'x'.repeat(52),
      `${'s'.repeat(64)}.locks`,
      42,
      null,
    ]
    for (const tableName of hostile) {
      expect(() => new PostgresStore({ connection: spy, tableName: tableName as string }), String(tableName)).toThrow(
        errors.E_INVALID_ARGUMENT,
      )
    }
    expect(sent).toBe(0)
  })

  test('names are quoted, so they are used exactly as written, mixed case and $ included', async () => {
    const tableName = trackTable(`${uniqueTableName('Verrou_Mixed')}$X`)
    const store = new PostgresStore({ connection: pool, tableName, listen: false })
    expect((await store.acquire(uniqueKey(), 'a', 60_000)).acquired).toBe(true)
    expect(await tableExists('public', tableName)).toBe(true)
    expect(await tableExists('public', tableName.toLowerCase())).toBe(false)
  })

  test('a schema-qualified name puts the table and its sequence in that schema', async () => {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    const store = new PostgresStore({ connection: pool, tableName: `${schema}.locks`, listen: false })
    const key = uniqueKey()
    const first = await store.acquire(key, 'a', 60_000)
    await store.release(key, 'a')
    const second = await store.acquire(key, 'b', 60_000)
    expect(first.acquired && second.acquired && second.fencingToken > first.fencingToken).toBe(true)
    expect(await tableExists(schema, 'locks')).toBe(true)
    const { rows } = await pool.query('SELECT 1 FROM pg_sequences WHERE schemaname = $1 AND sequencename = $2', [
      schema,
      'locks_fencing_seq',
    ])
    expect(rows).toHaveLength(1)
  })
})

describe('autoCreateTable', () => {
  test('10 stores on 10 sessions creating the same table at once all succeed, and share one lock', async () => {
    const tableName = trackTable(uniqueTableName('verrou_race'))
    const clients = await Promise.all(Array.from({ length: 10 }, () => createClient()))
    try {
      const stores = clients.map((client) => new PostgresStore({ connection: client, tableName, listen: false }))
      const key = uniqueKey()
      const results = await Promise.all(stores.map((store, i) => store.acquire(key, `owner-${i}`, 60_000)))
      expect(results.filter((result) => result.acquired)).toHaveLength(1)
    } finally {
      await Promise.all(clients.map((client) => client.end()))
    }
  })

  test('autoCreateTable: false never creates anything: a missing table is a storage error', async () => {
    const tableName = trackTable(uniqueTableName('verrou_manual'))
    const store = new PostgresStore({ connection: pool, tableName, autoCreateTable: false, listen: false })
    await expect(store.acquire(uniqueKey(), 'a', 1000)).rejects.toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect(await tableExists('public', tableName)).toBe(false)
  })

  test('a role that may not create tables can still use a table created for it, autoCreateTable left on', async () => {
    const tableName = trackTable(uniqueTableName('verrou_granted'))
    const role = uniqueTableName('verrou_role')
    await pool.query(createTableSql(resolveTableNames(tableName), { guarded: false }))
    await pool.query(`CREATE ROLE "${role}" LOGIN; REVOKE CREATE ON SCHEMA public FROM "${role}";
      GRANT SELECT, INSERT, UPDATE, DELETE ON "${tableName}" TO "${role}";
      GRANT USAGE ON SEQUENCE "${tableName}_fencing_seq" TO "${role}";
      GRANT USAGE, UPDATE ON SEQUENCE "${tableName}_prune_seq" TO "${role}"`)
    const restricted = createPool({ user: role, connectionString: undefined })
    try {
      // The role really cannot create: the store must cope with being refused the DDL.
      await expect(restricted.query(`CREATE TABLE "${role}_probe" (id int)`)).rejects.toMatchObject({ code: '42501' })
      const store = new PostgresStore({ connection: restricted, tableName, listen: false })
      const key = uniqueKey()
      expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
      expect(await store.release(key, 'a')).toBe(true)
      // A table the role cannot see is still an error, not a silent success.
      const missing = new PostgresStore({ connection: restricted, tableName: uniqueTableName('verrou_absent'), listen: false })
      await expect(missing.acquire(key, 'a', 60_000)).rejects.toMatchObject({ cause: { code: '42501' } })
    } finally {
      await restricted.end()
      await pool.query(`DROP OWNED BY "${role}"; DROP ROLE "${role}"`)
    }
  })

  test('the DDL printed in the README is the one the store runs, and works with autoCreateTable: false', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
    const documented = /```sql\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(documented?.trim()).toBe(createTableSql(resolveTableNames('verrou_locks'), { guarded: false }))

    const tableName = trackTable(uniqueTableName('verrou_manual'))
    await pool.query(createTableSql(resolveTableNames(tableName), { guarded: false }))
    const store = new PostgresStore({ connection: pool, tableName, autoCreateTable: false, listen: false })
    const key = uniqueKey()
    expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
    expect(await store.release(key, 'a')).toBe(true)
  })
})
