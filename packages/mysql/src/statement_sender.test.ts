import { randomUUID } from 'node:crypto'
import { errors } from '@verrou/core'
import type { Connection, Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest'
import { createTestConnection, createTestPool, dropTables, uniqueTableName } from '../test/mysql.js'
import { mysqlStore } from './index.js'
import { StatementSender } from './statement_sender.js'

const tableName = uniqueTableName('sender')
const pool = createTestPool({ connectionLimit: 2 })
const connections: Connection[] = []
const newKey = () => `verrou:mysql:sender:${randomUUID()}`

afterEach(() => {
  vi.restoreAllMocks()
})

afterAll(async () => {
  await dropTables(pool, tableName)
  await Promise.all(connections.map((connection) => connection.end()))
  await pool.end()
})

async function lockedCycle(db: Pool | Connection): Promise<void> {
  const store = mysqlStore({ connection: db, tableName, pruneInterval: false })
  const key = newKey()
  const owner = randomUUID()
  expect(await store.acquire(key, owner, 10_000)).toMatchObject({ acquired: true })
  expect(await store.isLocked(key)).toBe(true)
  expect(await store.release(key, owner)).toBe(true)
  expect(await store.isLocked(key)).toBe(false)
}

describe('StatementSender', () => {
  test("skips the promise wrapper's execute of a mysql2 Pool (its per-call stack capture); a patch of mysql2's callback Pool class still sees every statement", async () => {
    const wrapped = vi.spyOn(Object.getPrototypeOf(pool) as Pool, 'execute')
    // As instrumentation that patches mysql2's classes does: on the class, not on this pool.
    const core = vi.spyOn(Object.getPrototypeOf(pool.pool) as typeof pool.pool, 'execute')
    await lockedCycle(pool)
    expect(wrapped).not.toHaveBeenCalled()
    // acquire, isLocked, release, isLocked: one prepared statement each.
    expect(core).toHaveBeenCalledTimes(4)
  })

  test('sends the optimistic statements of semaphores and read-write locks the same way', async () => {
    const store = mysqlStore({ connection: pool, tableName, pruneInterval: false })
    const key = newKey()
    const owner = randomUUID()
    const permit = { exclusive: false, limit: 2 }
    // Creates the tables first, so that only the permit's statements are counted.
    await store.shared.isLocked(key, permit)
    const wrapped = vi.spyOn(Object.getPrototypeOf(pool) as Pool, 'execute')
    const core = vi.spyOn(Object.getPrototypeOf(pool.pool) as typeof pool.pool, 'execute')
    expect(await store.shared.acquire(key, owner, permit, 10_000)).toMatchObject({ acquired: true })
    // Held for a writer: a permit is out.
    expect(await store.shared.isLocked(key, { exclusive: true, limit: null })).toBe(true)
    expect(await store.shared.release(key, owner, permit)).toBe(true)
    expect(wrapped).not.toHaveBeenCalled()
    // A read and a write each for the acquire and the release, one read for isLocked.
    expect(core).toHaveBeenCalledTimes(5)
  })

  test('does the same on a lone mysql2 Connection', async () => {
    const connection = await createTestConnection()
    connections.push(connection)
    const wrapped = vi.spyOn(Object.getPrototypeOf(connection) as Connection, 'execute')
    const inner = (connection as unknown as { connection: Connection }).connection
    const core = vi.spyOn(Object.getPrototypeOf(inner) as Connection, 'execute')
    await lockedCycle(connection)
    expect(wrapped).not.toHaveBeenCalled()
    expect(core).toHaveBeenCalledTimes(4)
  })

  test('calls an execute replaced on the Pool itself, so that instrumentation sees every statement', async () => {
    const instrumented = createTestPool({ connectionLimit: 1 })
    try {
      const sent: string[] = []
      const execute = instrumented.execute.bind(instrumented)
      Object.assign(instrumented, {
        execute(sql: string, params: unknown) {
          sent.push(sql)
          return execute(sql, params as never)
        },
      })
      const core = vi.spyOn(instrumented.pool, 'execute')
      await lockedCycle(instrumented)
      expect(sent).toHaveLength(4)
      // The wrapper reaches the callback pool itself, once per statement: nothing went around it.
      expect(core).toHaveBeenCalledTimes(4)
    } finally {
      await instrumented.end()
    }
  })

  test("resolves with the statement's result, and rejects with the driver's own error", async () => {
    const sender = new StatementSender(pool, undefined)
    const rows = await sender.execute<RowDataPacket[]>('SELECT ? + 1 AS answer', [41])
    expect(rows).toEqual([{ answer: 42 }])
    const header = await sender.execute<ResultSetHeader>('DO ?', [1])
    expect(header.affectedRows).toBe(0)
    await expect(sender.execute('SELECT * FROM verrou_no_such_table_here WHERE id = ?', [1])).rejects.toMatchObject({
      errno: 1146,
    })
  })

  test('a failed statement reaches the caller of the store as E_LOCK_STORAGE_ERROR with the driver error as cause', async () => {
    const store = mysqlStore({ connection: pool, tableName: uniqueTableName('sender_missing'), autoCreateTable: false })
    const failure = await store.acquire(newKey(), randomUUID(), 1_000).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(errors.E_LOCK_STORAGE_ERROR)
    expect((failure as Error).cause).toMatchObject({ errno: 1146 })
  })
})
