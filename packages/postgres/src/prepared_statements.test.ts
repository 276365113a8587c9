import { errors } from '@verrou/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createClient, createPool, dropTable, uniqueKey, uniqueTableName } from '../test/postgres.js'
import { toQueryable } from './connection.js'
import { PostgresStore } from './store.js'

const tableName = uniqueTableName('verrou_prepared')
let admin: pg.Client

beforeAll(async () => {
  admin = await createClient()
})

afterAll(async () => {
  await dropTable(admin, tableName)
  await admin.end()
})

/** Counts the Parse messages pg sends on `client`, by statement name ('' for unnamed ones). */
function countParses(client: pg.Client): Map<string, number> {
  const connection = (client as unknown as { connection: { parse(config: { name?: string }): void } }).connection
  const parse = connection.parse.bind(connection)
  const counts = new Map<string, number>()
  connection.parse = (config) => {
    const name = config.name ?? ''
    counts.set(name, (counts.get(name) ?? 0) + 1)
    parse(config)
  }
  return counts
}

/** The session's prepared statements that Verrou made. */
async function preparedOn(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'verrou\\_%' ORDER BY name")
  return rows.map((row: { name: string }) => row.name)
}

/** Every kind of lock operation, `rounds` times over. */
async function exercise(store: PostgresStore, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const key = uniqueKey()
    expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
    expect((await store.acquire(key, 'b', 60_000)).acquired).toBe(false)
    expect(await store.extend(key, 'a', 60_000)).toBe(true)
    expect(await store.isLocked(key)).toBe(true)
    expect(await store.release(key, 'a')).toBe(true)
    expect((await store.acquire(key, 'b', 60_000)).acquired).toBe(true)
    // The light statement finds the lock held; the full one queues c.
    expect(await store.acquire(key, 'c', 60_000, { lease: 60_000 })).toMatchObject({ acquired: false, position: 0 })
    // This store saw the queue: the release goes straight to the full statement.
    expect(await store.release(key, 'b')).toBe(true)
    await store.leaveQueue(key, 'c')
    await store.forceRelease(key)
  }
}

describe('named prepared statements', () => {
  test('on a Client: each lock statement is parsed once for the session, and shared by stores of the same table', async () => {
    const client = await createClient()
    try {
      const parses = countParses(client)
      const store = new PostgresStore({ connection: client, tableName, listen: false, pruneInterval: false })
      await exercise(store, 10)
      const prepared = await preparedOn(client)
      const operations = [
        'acquire',
        'acquire_waiting',
        'acquire_free',
        'release',
        'release_unqueued',
        'extend',
        'force_release',
        'is_locked',
        'leave_queue',
      ]
      expect(prepared).toHaveLength(operations.length)
      for (const operation of operations) {
        const names = prepared.filter((name) => new RegExp(`^verrou_${operation}_[0-9a-f]{16}$`).test(name))
        expect(names, operation).toHaveLength(1)
        expect(parses.get(names[0]!), operation).toBe(1)
      }

      // Another store of the same table reuses them; a store of another table gets its own, without clashing.
      const sameTable = new PostgresStore({ connection: client, tableName, listen: false, pruneInterval: false })
      await exercise(sameTable, 2)
      expect(await preparedOn(client)).toEqual(prepared)
      const otherTableName = uniqueTableName('verrou_prepared_other')
      const otherTable = new PostgresStore({ connection: client, tableName: otherTableName, listen: false, pruneInterval: false })
      try {
        await exercise(otherTable, 2)
        expect(await preparedOn(client)).toHaveLength(2 * operations.length)
        for (const name of await preparedOn(client)) expect(parses.get(name)).toBe(1)
      } finally {
        await dropTable(client, otherTableName)
      }
    } finally {
      await client.end()
    }
  })

  test('on a Pool: each lock statement is parsed at most once per pooled session', async () => {
    const pool = createPool({ max: 3 })
    const parsesBySession: Array<Map<string, number>> = []
    pool.on('connect', (client) => parsesBySession.push(countParses(client)))
    const store = new PostgresStore({ connection: pool, tableName, listen: false, pruneInterval: false })
    try {
      await Promise.all(Array.from({ length: 6 }, () => exercise(store, 5)))
      expect(parsesBySession.length).toBeGreaterThan(0)
      expect(parsesBySession.length).toBeLessThanOrEqual(3)
      let named = 0
      for (const parses of parsesBySession) {
        for (const [name, count] of parses) {
          if (!name.startsWith('verrou_')) continue
          named++
          expect(count, name).toBe(1)
        }
      }
      // 300 lock operations, yet at most 10 statements parsed on each of at most 3 sessions (the nine
      // statements of the operations, and the token redraw of an acquire that created the row while others
      // drew tokens), each of the nine on at least one.
      expect(named).toBeGreaterThanOrEqual(9)
      expect(named).toBeLessThanOrEqual(30)
    } finally {
      await store.close()
      await pool.end()
    }
  })

  test('preparedStatements: false sends every statement unnamed, so nothing is kept on the session', async () => {
    const client = await createClient()
    try {
      const parses = countParses(client)
      const store = new PostgresStore({ connection: client, tableName, listen: false, preparedStatements: false })
      await exercise(store, 3)
      expect(await preparedOn(client)).toEqual([])
      expect([...parses.keys()].filter((name) => name !== '')).toEqual([])
    } finally {
      await client.end()
    }
  })

  test('shared locks: every operation is the one statement, parsed once per session; unnamed when turned off', async () => {
    const client = await createClient()
    try {
      const parses = countParses(client)
      const store = new PostgresStore({ connection: client, tableName, listen: false, pruneInterval: false })
      const read = { exclusive: false, limit: null }
      const write = { exclusive: true, limit: null }
      for (let i = 0; i < 5; i++) {
        const key = uniqueKey()
        expect((await store.shared!.acquire(key, 'r', read, 60_000)).acquired).toBe(true)
        expect(await store.shared!.acquire(key, 'w', write, 60_000, { lease: 60_000 })).toMatchObject({ position: 0 })
        expect(await store.shared!.extend(key, 'r', read, 60_000)).toBe(true)
        expect(await store.shared!.isLocked(key, write)).toBe(true)
        await store.shared!.leaveQueue(key, 'w')
        expect(await store.shared!.release(key, 'r', read)).toBe(true)
        await store.shared!.forceRelease(key, write)
      }
      const prepared = (await preparedOn(client)).filter((name) => name.startsWith('verrou_shared_'))
      expect(prepared).toHaveLength(1)
      expect(parses.get(prepared[0]!)).toBe(1)

      const unnamed = await createClient()
      try {
        const off = new PostgresStore({
          connection: unnamed,
          tableName,
          listen: false,
          pruneInterval: false,
          preparedStatements: false,
        })
        expect((await off.shared!.acquire(uniqueKey(), 'r', read, 60_000)).acquired).toBe(true)
        expect(await preparedOn(unnamed)).toEqual([])
      } finally {
        await unnamed.end()
      }
    } finally {
      await client.end()
    }
  })

  test('preparedStatements must be a boolean', () => {
    expect(() => new PostgresStore({ connection: admin, preparedStatements: 'no' as never })).toThrow(errors.E_INVALID_ARGUMENT)
  })
})

describe('a prepared statement whose table went away', () => {
  async function expectStorageError(operation: Promise<unknown>, code: string): Promise<void> {
    const error = await operation.then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect(error).toMatchObject({ cause: { code } })
  }

  /** Drops the table and its sequence, checks the store fails meanwhile, and recreates them. */
  async function dropAndRecreate(store: PostgresStore, name: string): Promise<void> {
    await dropTable(admin, name)
    // 42P01 undefined_table: an error, never "not locked" or "not acquired".
    await expectStorageError(store.isLocked(uniqueKey()), '42P01')
    await expectStorageError(store.acquire(uniqueKey(), 'a', 60_000), '42P01')
    await expectStorageError(store.release(uniqueKey(), 'a'), '42P01')
    const creator = new PostgresStore({ connection: admin, tableName: name, listen: false })
    await creator.isLocked(uniqueKey())
  }

  for (const kind of ['Client', 'Pool'] as const) {
    test(`${kind}: storage errors while the table is gone, right answers as soon as it is back`, async () => {
      const name = uniqueTableName('verrou_prepared_drop')
      const connection = kind === 'Client' ? await createClient() : createPool({ max: 2 })
      const store = new PostgresStore({ connection, tableName: name, listen: false, pruneInterval: false })
      try {
        await exercise(store, 3)
        const key = uniqueKey()
        expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)

        await dropAndRecreate(store, name)
        // The lock went with the table; the statements re-plan against the new table and sequence.
        expect(await store.isLocked(key)).toBe(false)
        expect(await store.acquire(key, 'b', 60_000)).toEqual({ acquired: true, fencingToken: 1 })
        expect(await store.release(key, 'a')).toBe(false)
        await exercise(store, 3)
      } finally {
        await dropTable(admin, name)
        await connection.end()
      }
    })
  }

  test('Client: a statement deallocated behind pg’s back is one storage error, then prepared again', async () => {
    const client = await createClient()
    try {
      const store = new PostgresStore({ connection: client, tableName, listen: false })
      const key = uniqueKey()
      expect((await store.acquire(key, 'a', 60_000)).acquired).toBe(true)
      expect(await store.isLocked(key)).toBe(true)
      await client.query('DEALLOCATE ALL')
      // 26000 invalid_sql_statement_name: raised at bind, before anything ran.
      await expectStorageError(store.isLocked(key), '26000')
      expect(await store.isLocked(key)).toBe(true)
      await expectStorageError(store.acquire(key, 'b', 60_000), '26000')
      expect(await store.acquire(key, 'b', 60_000)).toMatchObject({ acquired: false })
      // Release was not prepared before DEALLOCATE ALL: it is prepared now, and nothing fails.
      expect(await store.release(key, 'a')).toBe(true)
      expect(await store.isLocked(key)).toBe(false)
    } finally {
      await client.end()
    }
  })

  test('Client: a statement whose result type changed is one error, then deallocated and prepared again', async () => {
    // The store's statements cast every output column, so this cannot happen to them; a `SELECT *` shows
    // that the client queue still recovers if it ever did.
    const client = await createClient()
    const name = uniqueTableName('verrou_prepared_shape')
    try {
      await client.query(`CREATE TABLE "${name}" (a int)`)
      const queue = toQueryable(client)
      const query = { name: `verrou_test_${name}`, text: `SELECT * FROM "${name}"` }
      expect((await queue.query(query)).fields.map((field) => field.name)).toEqual(['a'])
      await client.query(`ALTER TABLE "${name}" ADD COLUMN b int`)
      await expect(queue.query(query)).rejects.toMatchObject({
        code: '0A000',
        message: /cached plan must not change result type/,
      })
      expect((await queue.query(query)).fields.map((field) => field.name)).toEqual(['a', 'b'])
    } finally {
      await client.query(`DROP TABLE IF EXISTS "${name}"`)
      await client.end()
    }
  })
})
